"""Network: the runner's security group, the RDS ingress rule and (optionally) VPC endpoints.

The private subnets have no internet route. Either the config says a NAT gateway exists, or the
stack creates the endpoints the runner needs: S3 (gateway, free) and Secrets Manager and
CloudWatch Logs (interface), plus ECR when the Fargate path pulls the image from inside the VPC.
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_endpoint import VpcEndpoint
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from modules.config import StackConfig

HTTPS = 443


class RunnerNetwork(Construct):
    def __init__(self, scope: Construct, id_: str, config: StackConfig) -> None:
        super().__init__(scope, id_)
        names = config.names
        vpc = config.vpc
        database = config.database

        self.runner_security_group = SecurityGroup(
            self,
            "runner",
            name=names.runner_security_group,
            description="Lambda Test Runner: reaches the database and AWS APIs only",
            vpc_id=vpc.vpc_id,
            # Rules are separate resources below; an inline empty list would fight them.
            tags={"Name": names.runner_security_group},
        )
        self.security_group_id = self.runner_security_group.id

        VpcSecurityGroupEgressRule(
            self,
            "runner_to_database",
            security_group_id=self.runner_security_group.id,
            description="PostgreSQL on the RDS security group",
            ip_protocol="tcp",
            from_port=database.port,
            to_port=database.port,
            referenced_security_group_id=database.security_group_id,
        )
        VpcSecurityGroupIngressRule(
            self,
            "database_from_runner",
            security_group_id=database.security_group_id,
            description=f"Lambda Test Runner ({names.prefix}) to PostgreSQL",
            ip_protocol="tcp",
            from_port=database.port,
            to_port=database.port,
            referenced_security_group_id=self.runner_security_group.id,
        )

        self.interface_endpoint_services: list[str] = []
        if vpc.create_vpc_endpoints:
            self._endpoints(config)
        else:
            # A NAT gateway carries the AWS API traffic; HTTPS is the only protocol allowed out.
            VpcSecurityGroupEgressRule(
                self,
                "runner_https_via_nat",
                security_group_id=self.runner_security_group.id,
                description="HTTPS to AWS APIs through the NAT gateway",
                ip_protocol="tcp",
                from_port=HTTPS,
                to_port=HTTPS,
                cidr_ipv4="0.0.0.0/0",
            )

    def _endpoints(self, config: StackConfig) -> None:
        names = config.names
        vpc = config.vpc
        region = config.region

        self.endpoints_security_group = SecurityGroup(
            self,
            "endpoints",
            name=names.endpoints_security_group,
            description="Lambda Test Runner: interface endpoints accept HTTPS from the runner",
            vpc_id=vpc.vpc_id,
            tags={"Name": names.endpoints_security_group},
        )
        VpcSecurityGroupIngressRule(
            self,
            "endpoints_from_runner",
            security_group_id=self.endpoints_security_group.id,
            description="HTTPS from the runner",
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            referenced_security_group_id=self.runner_security_group.id,
        )
        VpcSecurityGroupEgressRule(
            self,
            "runner_to_endpoints",
            security_group_id=self.runner_security_group.id,
            description="HTTPS to the interface VPC endpoints",
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            referenced_security_group_id=self.endpoints_security_group.id,
        )

        self.s3_endpoint = VpcEndpoint(
            self,
            "s3",
            vpc_id=vpc.vpc_id,
            service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=list(vpc.private_route_table_ids),
            tags={"Name": f"{names.prefix}-s3"},
        )
        VpcSecurityGroupEgressRule(
            self,
            "runner_to_s3",
            security_group_id=self.runner_security_group.id,
            description="HTTPS to S3 through the gateway endpoint",
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            prefix_list_id=self.s3_endpoint.prefix_list_id,
        )

        services = ["secretsmanager", "logs"]
        if config.fargate.enabled:
            # Fargate pulls the image from inside the VPC (Lambda pulls it outside).
            services += ["ecr.api", "ecr.dkr"]
        self.interface_endpoint_services = services
        for service in services:
            VpcEndpoint(
                self,
                service.replace(".", "_"),
                vpc_id=vpc.vpc_id,
                service_name=f"com.amazonaws.{region}.{service}",
                vpc_endpoint_type="Interface",
                subnet_ids=list(vpc.private_subnet_ids),
                security_group_ids=[self.endpoints_security_group.id],
                private_dns_enabled=True,
                tags={"Name": f"{names.prefix}-{service}"},
            )
