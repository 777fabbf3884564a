"""`newswatch send-test`: proves credentials with one real message; 0 sent, 1 refused, 2 usage."""

from __future__ import annotations

from tests.conftest import ConfigDir, run_cli
from tests.peers.slack_emulator import SlackEmulator


def configure(cfg: ConfigDir, slack: SlackEmulator, token: str) -> None:
    cfg.write(
        "settings.yaml",
        f"""
        store: sqlite:{cfg.store}
        destinations:
          desk: {{type: slack, channel: '#iraq', token: '{token}', base_url: '{slack.base_url}'}}
    """,
    )
    cfg.write("rules.yaml", "rules: [{id: r, title: W, query: x}]\n")


def test_send_test_posts_one_message(config_dir: ConfigDir, slack: SlackEmulator) -> None:
    configure(config_dir, slack, "${SLACK_TEST_TOKEN}")
    result = run_cli("--config", str(config_dir.path), "send-test", "desk")
    assert result.code == 0, result.stderr
    (message,) = slack.messages
    assert message.channel == "#iraq" and "newswatch test message" in message.text
    assert not config_dir.store.exists()


def test_send_test_reports_refused_credentials(config_dir: ConfigDir, slack: SlackEmulator) -> None:
    configure(config_dir, slack, "xoxb-wrong-token-1234")
    result = run_cli("--config", str(config_dir.path), "send-test", "desk")
    assert result.code == 1
    assert "invalid_auth" in result.stderr
    assert "xoxb-wrong-token-1234" not in result.stderr + result.stdout
    unknown = run_cli("--config", str(config_dir.path), "send-test", "nope")
    assert unknown.code == 2 and "unknown destination 'nope' (known: desk)" in unknown.stderr
