"""The MaskSup method: occlusion masks, the two-branch wrapper, its loss and its trainer."""
