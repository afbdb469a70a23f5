"""The text tools on the real default model (slow: `pytest -m integration`)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

LICENCE_PART = """\
Grant of Copyright License. Subject to the terms and conditions of this License, each Contributor hereby grants
to You a perpetual, worldwide, non-exclusive, no-charge, royalty-free, irrevocable copyright license to
reproduce, prepare Derivative Works of, publicly display, publicly perform, sublicense, and distribute the Work
and such Derivative Works in Source or Object form.

Redistribution. You may reproduce and distribute copies of the Work or Derivative Works thereof in any medium,
with or without modifications, provided that You give any other recipients of the Work a copy of this License
and You cause any modified files to carry prominent notices stating that You changed the files.
"""


def test_summarize_in_parts_with_the_default_model(default_lm):
    from engine.texttools.summarize import SummaryConfig, summarize

    progress = []
    config = SummaryConfig(length="short", max_chunk_tokens=120, max_new_tokens=40)
    result = summarize(default_lm, LICENCE_PART, config, on_progress=lambda f, m: progress.append(m))
    assert result.parts >= 2 and result.text.strip()
    assert "Summarizing part 1 of" in progress[0] and any(m.startswith("Combining") for m in progress)


def test_complete_a_half_written_function(default_lm):
    from engine.texttools.code_completion import CompletionRequest, complete_code

    prefix = "def is_even(n):\n    \"\"\"Return True if n is even.\"\"\"\n    return n "
    result = complete_code(default_lm, CompletionRequest(prefix=prefix, suffix="\n\n\nprint(is_even(4))\n",
                                                         language="python", max_new_tokens=24))
    assert result.mode == "prefix" and result.text.strip()
    assert "\n" not in result.text.strip() or result.finish_reason == "boundary"
    compile(prefix + result.text, "<completion>", "exec")  # it finishes the statement as valid Python
