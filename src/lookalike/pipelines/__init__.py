"""Batch steps that join the layers: extract descriptors, index folders, evaluate protocols."""
