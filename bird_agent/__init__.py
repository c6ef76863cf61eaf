"""bird_agent: the BGP speaker that drives ExaBGP and feeds learned routes to felix."""
