"""The run notification topic: one message per run whose status changed or that has new failures
(the report processor decides and publishes; report_processor/history/section.py shapes it).

Separate from the alerts topic (monitoring.py): alarms say something is wrong with the pipeline
or the nightly signal, this topic tells people what changed in their tests. Subscribers can
filter on the message attributes project, environment, command and status.
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct

from modules.config import StackConfig
from modules.encryption import StackKey
from modules.iam import Statement

# Without the stack's key, SNS's AWS-managed key: only the report processor's role publishes,
# and the AWS-managed key serves any principal of the account through SNS (CloudWatch alarms
# could not use it, which is why the alerts topic differs).
AWS_MANAGED_SNS_KEY = "alias/aws/sns"


class RunNotifications(Construct):
    def __init__(
        self, scope: Construct, id_: str, config: StackConfig, *, key: StackKey | None = None
    ) -> None:
        super().__init__(scope, id_)
        self.topic = SnsTopic(
            self,
            "topic",
            name=config.names.notification_topic,
            # The sender name of the e-mails.
            display_name=f"Test runs {config.project}/{config.environment}",
            kms_master_key_id=key.arn if key else AWS_MANAGED_SNS_KEY,
        )
        self.topic_arn = self.topic.arn
        for email in config.notifications.emails:
            # Named by address, not position: reordering the list must not recreate (and so
            # unconfirm) a subscription. "/" would split the construct path.
            SnsTopicSubscription(
                self,
                "email_" + email.replace("/", "_"),
                topic_arn=self.topic.arn,
                protocol="email",
                endpoint=email,
            )

    def publish_statement(self) -> Statement:
        """For the report processor: publish to this topic only."""
        return Statement(
            sid="PublishRunNotifications", actions=["sns:Publish"], resources=[self.topic_arn]
        )
