"""Behaviour cloning on frozen embeddings, closed-loop evaluation and failure diagnosis.

```python
from vlnav_data.policy import TrainConfig, train_policy, EvalConfig, evaluate_policy
from vlnav_data.policy import DaggerConfig, run_dagger, DiagnoseConfig, diagnose_eval

train_policy(TrainConfig(dataset="demos.h5", out_dir="bc", num_steps=20_000))  # paper recipe, shortened
res = evaluate_policy(EvalConfig(model_dir="bc", out_dir="eval", num_episodes=100))
res.student.success["rate"], res.student.mean_env_steps_successes, res.paired_step_ratio
diagnose_eval(DiagnoseConfig(eval_dir="eval"))  # eval/diagnosis/report.md
```

Every reported length is in env steps (one 30 Hz control step, counted once). The student never sees a
``privileged_*`` input (``features.check_student_inputs``).
"""

from vlnav_data.policy.behaviour import BEHAVIOURS, FAILURE_CLASSES, BehaviourThresholds
from vlnav_data.policy.dagger import DaggerConfig, DaggerResult, run_dagger
from vlnav_data.policy.diagnose import DiagnoseConfig, DiagnoseResult, diagnose_eval
from vlnav_data.policy.evaluate import EvalConfig, EvalResult, evaluate_policy, evaluation_seeds
from vlnav_data.policy.features import FEATURE_SETS
from vlnav_data.policy.fit import RECIPES, BCRecipe, fit_bc, get_recipe
from vlnav_data.policy.knn import KnnPolicy, load_knn_policy
from vlnav_data.policy.metrics import spl
from vlnav_data.policy.model import BCPolicyNet
from vlnav_data.policy.model_dir import PolicySpec, load_model_dir, read_policy_spec
from vlnav_data.policy.records import EpisodeRecords, run_policy_episodes
from vlnav_data.policy.train import TrainConfig, TrainResult, train_policy

__all__ = [
    "BEHAVIOURS",
    "FAILURE_CLASSES",
    "FEATURE_SETS",
    "RECIPES",
    "BCPolicyNet",
    "BCRecipe",
    "BehaviourThresholds",
    "DaggerConfig",
    "DaggerResult",
    "DiagnoseConfig",
    "DiagnoseResult",
    "EpisodeRecords",
    "EvalConfig",
    "EvalResult",
    "KnnPolicy",
    "PolicySpec",
    "TrainConfig",
    "TrainResult",
    "diagnose_eval",
    "evaluate_policy",
    "evaluation_seeds",
    "fit_bc",
    "get_recipe",
    "load_knn_policy",
    "load_model_dir",
    "read_policy_spec",
    "run_dagger",
    "run_policy_episodes",
    "spl",
    "train_policy",
]
