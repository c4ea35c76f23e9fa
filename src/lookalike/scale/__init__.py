"""Scale-out on existing engines: image description on a Ray cluster (extra ``scale``)."""
