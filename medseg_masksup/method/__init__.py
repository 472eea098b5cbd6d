"""The MaskSup method: occlusion masks, the two-branch wrapper, its loss and its trainer."""

#: the methods training runs (the ``method`` setting): MaskSup (α, β, γ) and its two ablations, ``context`` (γ = 0)
#: and ``baseline`` (β = γ = 0)
METHODS = ("masksup", "context", "baseline")
