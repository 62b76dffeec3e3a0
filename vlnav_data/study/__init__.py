"""Encoder comparison studies: multi-seed behaviour cloning, paired statistics, probes side by side.

```python
from vlnav_data.study import StudyConfig, run_study

result = run_study(StudyConfig(datasets=("demos.h5",), out_dir="study", encoders=("oracle", "siglip"),
                               seeds=3, num_episodes=200, num_steps=20_000))
result.report  # study/report.md; study/result.json holds every cell and statistic
```

A study is a grid of cells (encoder, features, recipe, training seed) plus one probe cell per
(encoder, features); every BC cell is evaluated on one shared set of seeded starts with the expert
on the same starts. Each cell writes its own directory and a completion marker, so a study resumes
cell by cell. This package sits above ``policy``, ``probes`` and ``collect``; only ``cli`` imports it.
"""

from vlnav_data.study.cells import run_cell
from vlnav_data.study.config import EXECUTORS, Cell, StudyConfig, load_study_toml, study_cells
from vlnav_data.study.executors import run_cells
from vlnav_data.study.plan import StudyPlan, plan_study
from vlnav_data.study.run import CellEvent, StudyResult, report_study, run_study, study_command

__all__ = [
    "EXECUTORS",
    "Cell",
    "CellEvent",
    "StudyConfig",
    "StudyPlan",
    "StudyResult",
    "load_study_toml",
    "plan_study",
    "report_study",
    "run_cell",
    "run_cells",
    "run_study",
    "study_cells",
    "study_command",
]
