"""Local features: keypoints with their geometry and descriptors (extra ``[cv]``)."""
