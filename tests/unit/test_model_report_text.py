"""The evaluate report's wording (issue #23): folds as scored, no "– (n=0)"."""

from __future__ import annotations

from cryptoarena.model.report import comparison_rows, cv_head


def test_the_head_says_how_many_folds_were_scored() -> None:
    cv = {"scheme": "walk_forward", "k": 6, "gap": 300, "folds": [{}] * 5}
    assert "6 folds, 5 scored" in cv_head(cv)  # said "6 folds" above 5 rows
    assert "6 folds," in cv_head({**cv, "scheme": "blocked", "folds": [{}] * 6})


def test_no_move_beyond_fees_says_so_instead_of_n_0() -> None:
    r = {"mae_bp": 1.0, "rmse_bp": 2.0, "skill": 0.0, "dir_acc_big": None, "n_big_moves": 0,
         "dm_stat": 0.1, "dm_p": 0.5}  # fmt: skip
    cell = comparison_rows({"lstm": r})[0][4]
    assert "n=0" not in cell and "no move > fees" in cell
