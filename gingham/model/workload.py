"""WorkloadEndpoint: a pod's attachment to the fabric, written by felix."""
