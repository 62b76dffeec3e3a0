"""Publishing demonstration datasets: LeRobot v3.0 export, Hugging Face Hub folder, verification.

A layer above :mod:`vlnav_data.dataset`. pyarrow, av, huggingface_hub and datasets come from the
``hub`` extra (``pip install 'vlnav-data[hub]'``) and are imported inside the functions that use them.

```python
from vlnav_data.publish import LeRobotExportConfig, export_lerobot, PublishConfig, publish_dataset
from vlnav_data.publish import VerifyConfig, verify_folder

export_lerobot(LeRobotExportConfig(dataset="demos.h5", out_dir="demos-lerobot", images="video"))
publish_dataset(PublishConfig(dataset="demos.h5", repo_id="me/vlnav-text2nav", dry_run=True))
report = verify_folder(VerifyConfig(folder="vlnav-text2nav-hub"))  # report.problems: every problem found
```
"""

from vlnav_data.publish.checksums import SUMS_NAME, read_sha256sums, sha256_file, write_sha256sums
from vlnav_data.publish.hub import PublishConfig, PublishResult, missing_token_message, publish_dataset, require_token
from vlnav_data.publish.lerobot import (
    CAMERA_KEY,
    CODEBASE_VERSION,
    INFO_KEYS,
    LeRobotExportConfig,
    LeRobotExportResult,
    export_lerobot,
)
from vlnav_data.publish.shards import HUB_FILE_LIMIT_BYTES, Shard, write_shards
from vlnav_data.publish.verify import VerifyConfig, VerifyReport, verify_folder
from vlnav_data.publish.video import VIDEO_CODECS, decode_frames, psnr_db

__all__ = [
    "CAMERA_KEY",
    "CODEBASE_VERSION",
    "HUB_FILE_LIMIT_BYTES",
    "INFO_KEYS",
    "SUMS_NAME",
    "VIDEO_CODECS",
    "LeRobotExportConfig",
    "LeRobotExportResult",
    "PublishConfig",
    "PublishResult",
    "Shard",
    "VerifyConfig",
    "VerifyReport",
    "decode_frames",
    "export_lerobot",
    "missing_token_message",
    "psnr_db",
    "publish_dataset",
    "read_sha256sums",
    "require_token",
    "sha256_file",
    "verify_folder",
    "write_sha256sums",
    "write_shards",
]
