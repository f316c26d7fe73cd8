"""The [operator] and [audiences.NAME] settings (README "Settings", "Where records land")."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.operator import OperatorClients, describe_operator
from engine.sandbox import EmbeddedSandbox
from engine.settings import OperatorSettings, Settings
from engine.settings_file import SettingsError, load_settings

CONNECTION = '[connections.travel]\ndelivery_stream_name = "s"\n'


def load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "settings.toml"
    path.write_text(CONNECTION + text)
    return load_settings(path).settings


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[operator]\nrole_arn = "operator"\n', "is not an IAM role ARN"),
        ('[operator]\nexternal_id = "x"\n', "external_id is set but role_arn is empty"),
        ("[audiences.all]\nid = 1\n", "'all' is not a usable audience name"),
        ('[audiences."bad name"]\nid = 1\n', "is not a usable audience name"),
    ],
)
def test_bad_operator_and_audience_settings_name_the_fix(
    tmp_path: Path, text: str, words: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, text)
    joined = "\n".join(str(problem) for problem in caught.value.problems)
    assert words in joined and "Fix:" in joined


def test_operator_and_named_audiences_load(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        '[operator]\nprofile = "ops"\nrole_arn = "arn:aws-cn:iam::123456789012:role/reader"\n'
        'external_id = "e"\n[audiences.churn]\nid = 7\nexternal_name = "ChurnRisk"\n',
    )
    assert settings.audience_named("churn").audience_name == "ChurnRisk"
    assert settings.audience_named(None) is settings.audience
    assert describe_operator(settings.operator) == (
        "role arn:aws-cn:iam::123456789012:role/reader (assumed from profile ops)"
    )


def test_the_operator_assumes_its_role_before_reading(sandbox: EmbeddedSandbox) -> None:
    operator = OperatorSettings(
        role_arn=f"arn:aws:iam::{sandbox.account_id}:role/bucket-reader", external_id="e-1"
    )
    clients = OperatorClients(operator, region="us-east-1", endpoint_url=sandbox.endpoint_url)
    arn = clients.client("sts").get_caller_identity()["Arn"]
    assert arn.startswith(f"arn:aws:sts::{sandbox.account_id}:assumed-role/bucket-reader/")
