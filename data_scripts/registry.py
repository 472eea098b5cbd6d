"""All supported datasets, by command-line name."""

from __future__ import annotations

from data_scripts import cvc, glas, isic, kvasir, ph2, pranet
from data_scripts.spec import DatasetSpec

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec for spec in (glas.SPEC, kvasir.SPEC, cvc.SPEC, pranet.SPEC, isic.SPEC, ph2.SPEC)
}
