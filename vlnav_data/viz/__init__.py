"""Rerun recordings: look at episodes, evaluations and failures (the ``viz`` extra, ``rerun-sdk``).

Above ``dataset``, ``probes`` and ``policy``, below ``cli``; Rerun is imported inside the functions that
log (:func:`vlnav_data.viz.recording.import_rerun`), so importing this package needs no extra.

```python
from vlnav_data.viz import ViewConfig, view_dataset            # vlnav-data view FILE --out REC.rrd
from vlnav_data.viz import EvalRecordingConfig, record_eval      # vlnav-policy diagnose EVAL_DIR --rerun REC.rrd
from vlnav_data.viz import record_embedding_map                  # vlnav-probe umap FILE --out DIR --rerun REC.rrd
```
"""

from vlnav_data.viz.embedding_map import MapRecordingResult, record_embedding_map
from vlnav_data.viz.eval_recording import EvalRecordingConfig, EvalRecordingResult, record_eval
from vlnav_data.viz.recording import check_recording, import_rerun
from vlnav_data.viz.view import ViewConfig, ViewResult, view_dataset

__all__ = [
    "EvalRecordingConfig",
    "EvalRecordingResult",
    "MapRecordingResult",
    "ViewConfig",
    "ViewResult",
    "check_recording",
    "import_rerun",
    "record_embedding_map",
    "record_eval",
    "view_dataset",
]
