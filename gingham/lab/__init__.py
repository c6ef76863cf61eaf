"""`gingham lab`: whole fabrics on one machine (network namespaces, or QEMU guests in `vm`)."""
