"""IPAM kinds: IPAMConfiguration, IPAMBlock, BlockAffinity, IPAMHandle (owned by the IPAM work)."""
