"""Studies: methods × seeds × folds trained alike on one datalist, evaluated alike, compared with statistics.

:mod:`.plan` (what to run), :mod:`.runner` (run it, resumably), :mod:`.statistics` (paired bootstrap and
Wilcoxon), :mod:`.report` (tables and figures). ``medseg-masksup compare`` is the command.
"""
