import pytest

from engine import ChatMessage, InvalidConfigError, LoadConfig, SamplingConfig


def test_sampling_defaults_are_valid_and_round_trip():
    config = SamplingConfig(stop=("###",), seed=3)
    assert SamplingConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("kwargs", [
    {"temperature": -0.1}, {"top_p": 0.0}, {"top_p": 1.5}, {"top_k": -1}, {"min_p": 1.0},
    {"repetition_penalty": 0.1}, {"max_new_tokens": 0},
])
def test_sampling_rejects_bad_values_with_the_field_name(kwargs):
    with pytest.raises(InvalidConfigError) as info:
        SamplingConfig(**kwargs)
    assert next(iter(kwargs)) in str(info.value)


def test_a_single_stop_string_is_not_split_into_characters():
    assert SamplingConfig(stop="END").stop == ("END",)
    assert SamplingConfig(stop=("", "x")).stop == ("x",)


def test_load_config_and_message_validation():
    with pytest.raises(InvalidConfigError):
        LoadConfig(device="tpu")
    with pytest.raises(InvalidConfigError):
        LoadConfig(dtype="int3")
    with pytest.raises(InvalidConfigError):
        ChatMessage("robot", "hi")
    assert LoadConfig(path="~/m").path.endswith("/m") and "~" not in LoadConfig(path="~/m").path
