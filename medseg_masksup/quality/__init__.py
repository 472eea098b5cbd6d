"""Know when not to trust a mask: per-case quality scores, uncertainty maps and a review flag.

- :mod:`.settings`: the passes (flips, seeded masks, both; ``k``, mask ratio) and the candidate scores;
- :mod:`.passes`: the passes beside a case's plain prediction (:func:`~.passes.assess`), its scores and map;
- :mod:`.risk_coverage`: judging scores by failure detection (AURC, oracle, chance, Spearman …);
- :mod:`.review`: the review threshold chosen on held-out cases, stored as ``quality.json`` beside the checkpoint;
- :mod:`.maps`, :mod:`.figure`: the uncertainty map on the input grid, the risk–coverage figure.

``medseg-masksup evaluate --uncertainty`` and ``infer --uncertainty`` use them; see ``docs/quality.md``.
"""

from .settings import PASS_KINDS, SCORES, QualitySettings

__all__ = ["PASS_KINDS", "SCORES", "QualitySettings"]
