"""The stack: composes one construct per concern. Nothing here but wiring and outputs."""

from __future__ import annotations

import tempfile
from pathlib import Path

from cdktf import App, LocalBackend, S3Backend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.provider import AwsProvider
from constructs import Construct

from modules.config import StackConfig
from modules.encryption import StackKey
from modules.fargate import FargateRunner
from modules.monitoring import Monitoring
from modules.network import RunnerNetwork
from modules.notifications import RunNotifications
from modules.packaging import stage_report_processor
from modules.registry import RunnerRepository
from modules.reporting import ReportProcessor
from modules.results import ResultsStorage
from modules.runner import RunnerFunction
from modules.schedule import Schedules
from modules.sharding import ShardedRuns

# Local state lands in the repository root (three levels above cdktf.out/stacks/<stack>/),
# beside the config it belongs to, and survives `rm -rf cdktf.out`.
LOCAL_STATE_DIR = "../../.."


class LambdaTestRunnerStack(TerraformStack):
    def __init__(self, scope: Construct, config: StackConfig, *, report_bundle_dir: Path) -> None:
        names = config.names
        super().__init__(scope, names.stack)
        self._backend(config)
        self._provider(config)

        # The account the stack is applied in: ARNs in policies and confused-deputy conditions.
        account_id = DataAwsCallerIdentity(self, "account").account_id
        self.key = (
            StackKey(self, "encryption", config, account_id=account_id)
            if config.encryption.customer_managed_key
            else None
        )
        self.network = RunnerNetwork(self, "network", config)
        self.repository = RunnerRepository(self, "registry", config, account_id=account_id)
        self.results = ResultsStorage(self, "results", config, key=self.key)
        self.runner = self._runner(config, account_id)
        self.network.outlive(self.runner.role_policy)
        self.notifications = RunNotifications(self, "notifications", config, key=self.key)
        self.reporting = self._reporting(config, report_bundle_dir, account_id)
        self.fargate = self._fargate(config) if config.fargate.enabled else None
        self.sharding = self._sharding(config)
        self.schedules = self._schedules(config)
        self.monitoring = self._monitoring(config)
        self._outputs()

    def _provider(self, config: StackConfig) -> None:
        AwsProvider(
            self,
            "aws",
            region=config.region,
            default_tags=[
                {
                    "tags": {
                        "Project": config.project,
                        "Environment": config.environment,
                        "ManagedBy": "cdktf:lambda-test-runner",
                    }
                }
            ],
        )

    def _runner(self, config: StackConfig, account_id: str) -> RunnerFunction:
        return RunnerFunction(
            self,
            "runner",
            config,
            image_uri=self.repository.image_uri,
            image_pull_permission=self.repository.lambda_pull,
            account_id=account_id,
            security_group_id=self.network.security_group_id,
            results=self.results,
            key=self.key,
        )

    def _reporting(
        self, config: StackConfig, report_bundle_dir: Path, account_id: str
    ) -> ReportProcessor:
        return ReportProcessor(
            self,
            "reporting",
            config,
            results=self.results,
            notifications=self.notifications,
            bundle_dir=report_bundle_dir,
            account_id=account_id,
            key=self.key,
        )

    def _fargate(self, config: StackConfig) -> FargateRunner:
        return FargateRunner(
            self,
            "fargate",
            config,
            image_uri=self.repository.image_uri,
            repository_arn=self.repository.repository_arn,
            results=self.results,
            key=self.key,
        )

    def _sharding(self, config: StackConfig) -> ShardedRuns:
        return ShardedRuns(
            self,
            "sharding",
            config,
            runner_function_arn=self.runner.function_arn,
            results=self.results,
            bundle=self.reporting.bundle,
            key=self.key,
        )

    def _schedules(self, config: StackConfig) -> Schedules:
        return Schedules(
            self,
            "schedules",
            config,
            runner_function_name=self.runner.function_name,
            runner_function_arn=self.runner.function_arn,
            security_group_id=self.network.security_group_id,
            fargate=self.fargate,
            state_machine_arn=self.sharding.state_machine_arn,
            key=self.key,
        )

    def _monitoring(self, config: StackConfig) -> Monitoring:
        return Monitoring(
            self,
            "monitoring",
            config,
            runner_dlq_name=self.runner.dead_letter_queue.name,
            report_dlq_name=self.reporting.dead_letter_queue.name,
            schedule_dlq_name=self.schedules.dead_letter_queue.name,
            state_machine_arn=self.sharding.state_machine_arn,
            key=self.key,
        )

    def _backend(self, config: StackConfig) -> None:
        state = config.state_backend
        if state is None:
            LocalBackend(self, path=f"{LOCAL_STATE_DIR}/{config.names.local_state_file}")
            return
        backend = S3Backend(self, bucket=state.bucket, key=state.key, region=state.region)
        backend.add_override("encrypt", True)
        # S3-native state locking (Terraform >= 1.10); cdktf 0.21 has no typed field for it.
        backend.add_override("use_lockfile", True)

    def _outputs(self) -> None:
        outputs = {
            "repository_url": self.repository.repository_url,
            "runner_function_name": self.runner.function_name,
            "report_function_name": self.reporting.function_name,
            "results_bucket": self.results.bucket_name,
            "dashboard_name": self.monitoring.dashboard.dashboard_name,
            "alerts_topic_arn": self.monitoring.topic.arn,
            "notification_topic_arn": self.notifications.topic_arn,
            "state_machine_arn": self.sharding.state_machine_arn,
            "merge_function_name": self.sharding.merge_function_name,
        }
        if self.fargate is not None:
            outputs["cluster_name"] = self.fargate.cluster.name
            outputs["task_definition_arn"] = self.fargate.task_definition.arn
        for name, value in outputs.items():
            TerraformOutput(self, name, value=value)


def synthesize(app: App, config: StackConfig) -> Path:
    """Add the stack to `app`, synthesize, and return the path of the stack's cdk.tf.json."""
    with tempfile.TemporaryDirectory(prefix="ltr-report-bundle-") as staging:
        bundle = stage_report_processor(Path(staging) / "report_processor_bundle")
        LambdaTestRunnerStack(app, config, report_bundle_dir=bundle)
        app.synth()
    return Path(app.outdir) / "stacks" / config.names.stack / "cdk.tf.json"
