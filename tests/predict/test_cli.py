"""``storelens predict eval-clv`` as a user runs it: CDNOW figures, and bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storelens.cli import app
from storelens.predict.cdnow import load_cdnow

runner = CliRunner()
WINDOW = ["--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30"]


@pytest.fixture(scope="module")
def cdnow_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CDNOW sample as a shop would export it, with a column the command must ignore."""
    tx = load_cdnow("sample")
    tx["date"] = tx["date"].dt.strftime("%Y-%m-%d")
    tx["store"] = "web"
    path = tmp_path_factory.mktemp("cdnow") / "cdnow.csv"
    tx.to_csv(path, index=False)
    return path


def test_json_reports_the_classic_model_on_cdnow(cdnow_csv: Path) -> None:
    result = runner.invoke(
        app, ["predict", "eval-clv", "--transactions", str(cdnow_csv), *WINDOW, "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["customers"] == 2357
    assert body["holdout_weeks"] == 39.0
    bg = body["bgnbd"]
    assert {k: round(v, 3) for k, v in bg["params"].items()} == {
        "r": 0.243,
        "alpha": 4.414,
        "a": 0.793,
        "b": 2.426,
    }
    assert (round(bg["predicted"]), bg["actual"], bg["aggregate_error_pct"]) == (
        1653,
        1882.0,
        -12.15,
    )
    assert bg["mae"] == 0.7855
    assert bg["spend"]["actual"] == 70976.39
    ours = body["storelens"]
    assert {"predicted", "actual", "aggregate_error_pct", "mae", "model"} <= set(ours)
    assert ours["actual"] == 1882.0
    # Chosen on the validation window (the honeymoon BG/NBD is within 5 % there with the
    # lowest MAE); its forecasts add up to its expected total, reported beside them.
    assert ours["model"] == "honeymoon_bgnbd"
    assert ours["predicted"] == pytest.approx(ours["expected_counts"]["predicted"], abs=1e-3)
    assert ours["mae"] < bg["mae"]
    assert abs(ours["aggregate_error_pct"]) < abs(bg["aggregate_error_pct"])
    assert ours["validation_window"]["from"] == "1997-07-02"
    # The same forecasts over resampled customers (not refitted): intervals around them.
    band = body["uncertainty"]
    assert (band["resamples"], band["customers"]) == (2000, 2357)
    assert band["mae_diff"]["diff"] == pytest.approx(ours["mae"] - bg["mae"], abs=2e-4)
    low, high = band["mae_diff"]["ci95"]
    assert low < band["mae_diff"]["diff"] < high < 0.0
    for name, err in (("storelens", ours), ("bgnbd", bg)):
        low, high = band[f"{name}_aggregate_error_pct_ci95"]
        assert low < err["aggregate_error_pct"] < high
    assert "not parameter uncertainty" in band["method"]


def test_tables_show_parameters_and_errors(cdnow_csv: Path) -> None:
    result = runner.invoke(app, ["predict", "eval-clv", "--transactions", str(cdnow_csv), *WINDOW])
    assert result.exit_code == 0, result.output
    assert "0.243, 4.414" in result.output
    assert "-12.1 %" in result.output
    text = " ".join(result.output.split())
    assert "storelens (honeymoon_bgnbd)" in text
    assert "95 % CI, paired bootstrap over customers" in text
    assert "2,000 resamples of the 2,357 customers" in text
    assert "not parameter uncertainty" in text
    assert "MAE, storelens − BG/NBD" in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("customer_id,amount\nc1,1\n", "line 1, column 'date': missing column"),
        ("customer_id,date,amount\nc1,1997-02-30,1\n", "line 2, column 'date': cannot read"),
        ("customer_id,date,amount\nc1,1997-02-01,1\nc1,1997-03-01,-2\n", "line 3, column 'amount'"),
    ],
)
def test_bad_file_exits_2_naming_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    result = runner.invoke(app, ["predict", "eval-clv", "--transactions", str(path), *WINDOW])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_holdout_before_calibration_end_exits_2(cdnow_csv: Path) -> None:
    result = runner.invoke(
        app,
        [
            "predict",
            "eval-clv",
            "--transactions",
            str(cdnow_csv),
            "--calibration-end",
            "1997-09-30",
            "--holdout-end",
            "1997-09-01",
        ],
    )
    assert result.exit_code == 2
    assert "'--holdout-end': holdout end 1997-09-01 is not after" in " ".join(result.output.split())


def test_too_little_data_to_fit_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "tiny.csv"
    path.write_text(  # runs to the holdout's end, or that is what it is refused for
        "customer_id,date,amount\nc1,1997-02-01,1\nc2,1997-02-03,2\nc1,1998-06-30,3\n"
    )
    result = runner.invoke(app, ["predict", "eval-clv", "--transactions", str(path), *WINDOW])
    assert result.exit_code == 2
    assert "BG/NBD needs at least 4 customers" in " ".join(result.output.split())


def test_spend_that_gamma_gamma_cannot_fit_still_measures_purchases(
    cdnow_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new user's 60-customer file was refused (exit 2) with lifetimes' advice to add a
    penalizer no option takes; the purchase counts it could measure were lost with it."""
    import storelens.predict.evaluate as evaluate
    from storelens.predict.clv import FitError

    def refuses(*_: object) -> None:
        raise FitError("Gamma-Gamma did not converge on the spends of 7 repeat buyers")

    monkeypatch.setattr(evaluate, "fit_gamma_gamma", refuses)
    args = ["predict", "eval-clv", "--transactions", str(cdnow_csv), *WINDOW]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["bgnbd"]["spend"] is None and body["bgnbd"]["gamma_gamma"] is None
    assert "did not converge" in body["bgnbd"]["spend_unavailable"]
    assert body["bgnbd"]["actual"] == 1882  # the purchases are still measured
    text = runner.invoke(app, args)
    assert text.exit_code == 0
    flat = " ".join(text.output.split())
    assert "holdout spend: not measured (Gamma-Gamma did not converge" in flat
    assert "penalizer" not in flat


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--calibration-end", "1997-02-30"], "got '1997-02-30': day is out of range for month"),
        (["--holdout-end", "30/06/1998"], "--holdout-end must be a date like 2026-11-02, got"),
    ],
)
def test_an_impossible_date_is_named_in_one_line(
    cdnow_csv: Path, args: list[str], message: str
) -> None:
    """A new user's review: Click said "'2026-13-01' does not match the formats
    '%Y-%m-%d'" in a box, of a value that matches the format and names no month."""
    window = dict(zip(WINDOW[::2], WINDOW[1::2], strict=True)) | dict([args])
    flat = [x for pair in window.items() for x in pair]
    result = runner.invoke(app, ["predict", "eval-clv", "--transactions", str(cdnow_csv), *flat])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "does not match the format" not in result.output


def test_score_names_an_impossible_as_of_before_opening_anything(tmp_path: Path) -> None:
    nowhere = f"sqlite:///{tmp_path / 'absent.db'}"
    result = runner.invoke(
        app, ["predict", "score", "--as-of", "2026-13-01", "--database-url", nowhere]
    )
    assert result.exit_code == 2
    assert "got '2026-13-01': month must be in 1..12" in " ".join(result.output.split())
    assert not (tmp_path / "absent.db").exists()
