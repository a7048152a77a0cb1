"""End to end: the protocol pipeline (docs/method.md#the-protocol) on random-weight RN50 over the
four protocol datasets in miniature, written in their published layouts."""
import pytest
from helpers import SPLIT_LAYOUTS, records, run_job, write_split_dataset


@pytest.mark.slow
def test_the_protocol_pipeline_runs_end_to_end_on_fixture_datasets_in_their_published_layouts(
        tmp_path):
    """`experiment=protocol_rn50` with RN50's random weights over the four protocol datasets in
    miniature (three classes each, in CoOp's layouts): Caltech101's first protocol forget class,
    scored on the other three. Each dataset is read with its fixture's three classes alone: RN50's
    text tower reading the four datasets' 518 class names would cost most of the test. (One job of
    the sweep, run in this process: every job of both protocol sweeps is composed in
    test_configs.py.)"""
    classes = {}
    for name, (_, _, _, written) in SPLIT_LAYOUTS.items():
        write_split_dataset(tmp_path / "data", name)
        classes[name] = "[" + ",".join(written).replace("_", " ") + "]"
    run_job(tmp_path, "experiment=protocol_rn50", "model.pretrained=null", "dataset=caltech101",
            "forget=protocol_1", f"data_dir={tmp_path / 'data'}", "logger=none",
            f"dataset.classnames={classes['caltech101']}",
            *[f"eval.cross.datasets.{name}.classnames={classes[name]}"
              for name in classes if name != "caltech101"], debug=False)
    (record,) = records(tmp_path)
    assert record["status"] == "complete" and record["config"]["model"]["name"] == "RN50"
    assert record["config"]["forget"]["classes"] == ["euphonium"]
    crosses = {key.split("/")[1] for key in record["metrics"] if key.startswith("cross/")}
    # the other three, never itself
    assert crosses == {"oxford_flowers", "stanford_cars", "stanford_dogs"}
    scored = {key.split("/")[1] for key in record["metrics"] if key.startswith("class/")}
    # Caltech101's fixture classes, read by name
    assert scored == {"face", "euphonium", "water lilly"}
