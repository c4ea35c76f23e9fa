"""Post-processing of descriptor vectors: explicit feature maps, normalisation."""
