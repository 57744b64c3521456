"""Coding: the coders' ratings of the blinded sessions, after selection (issue 19).

A coded file (config ``coding.inputs``) has one row per coder × session × instrument; a
row names its session by ``selection`` and ``code`` (the codes of
``results/selection/<name>_blinded.csv``), never by dyad or session. The codes are
resolved through the *frozen* copy of the key the study handed to its coders
(``coding.selections[].key``), never through the current key: a rerun of the selection
that re-letters the codes is reported (:mod:`.keys`), not silently remapped.

- :mod:`.ratings`: read the coded files with the ingest readers, reject unknown codes
  (``code_unknown``), and judge every row with the validation rules
  (:func:`dyadflow.validate.rules.validate_frames`); writes ``results/coding/ratings.parquet``,
  ``accounting.csv``, ``rejections.csv`` and ``warnings.csv``.
- :mod:`.agreement`: ICC, Cohen's and Fleiss' kappa, Krippendorff's alpha.
- :mod:`.consensus`: ``agreement.csv``, ``consensus.csv`` and ``to_discuss.csv``, by code only.
- :mod:`.comparison`: with ``unblind: true`` the consensus joins the key and the
  selection's groups are compared (``comparison.csv``).

Nothing in dyadflow imports this package except :mod:`dyadflow.stages`: coded results never
flow back into statistics or selection, so the workflow has no cycle.
"""
