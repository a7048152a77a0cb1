"""A job run again is skipped only where it would run the same: its config (numbers in one
spelling, without what changes no number), the code it ran and its data as its record says;
otherwise it runs again, saying why in one line, and its record is replaced in place. Jobs run in
this process (helpers.run_job)."""
from helpers import compose

from ccup.record import canonical, config_id, setting_ids


def test_numbers_are_one_spelling_and_export_is_not_a_setting():
    assert config_id(compose("alpha=1")) == config_id(compose("alpha=1.0")) == config_id(compose())
    assert config_id(compose("method.lam=1000")) == config_id(compose())  # the default's 1000.0
    assert config_id(compose("export=true")) == config_id(compose())
    assert setting_ids(compose("export=true", "method.lam=1000")) == setting_ids(compose())
    assert config_id(compose("method.lam=1000.5")) != config_id(compose())
    assert canonical({"a": [1.0, 2.5, True, False, 0.0]}) == {"a": [1, 2.5, True, False, 0]}
    assert [type(v) for v in canonical([True, 1.0])] == [bool, int]  # a boolean stays one
