"""Global (holistic) descriptors: one vector from the whole image, no local features.

(The folder is not called ``global`` because that is a Python keyword.)
"""
