"""Generated gRPC code (scripts/gen-proto); never edit by hand."""
