"""route_reflector: RFC 4456 route reflection on top of ExaBGP."""
