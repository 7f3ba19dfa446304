"""Network: the runner's security group, the RDS ingress rule and the VPC endpoints.

The private subnets have no internet route of their own. Per service the config says whether this
stack creates the endpoint, the VPC already has one, or a NAT gateway carries the traffic
(`vpc.endpoints`): S3 (gateway, free), Secrets Manager (interface), and for the Fargate path only
CloudWatch Logs and ECR (a Fargate task ships logs and pulls the image from inside the VPC; Lambda
does both outside the function's VPC).

Interface endpoints answer on the service's public name only through private DNS, which needs the
VPC's `enableDnsSupport` and `enableDnsHostnames`: when the runner relies on one, the stack reads
the VPC and the plan stops with a clear message if either is off.
"""

from __future__ import annotations

from cdktf import Postcondition, TerraformResource, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.data_aws_vpc import DataAwsVpc
from cdktf_cdktf_provider_aws.data_aws_vpc_endpoint import DataAwsVpcEndpoint
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_endpoint import VpcEndpoint
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from modules.config import StackConfig

HTTPS = 443
# config name -> the endpoint service names behind it
INTERFACE_SERVICES = {
    "secretsmanager": ("secretsmanager",),
    "logs": ("logs",),
    "ecr": ("ecr.api", "ecr.dkr"),
}
PRIVATE_DNS_CONDITION = "${self.enable_dns_support && self.enable_dns_hostnames}"


class RunnerNetwork(Construct):
    def __init__(self, scope: Construct, id_: str, config: StackConfig) -> None:
        super().__init__(scope, id_)
        self.config = config
        names = config.names
        database = config.database

        self.runner_security_group = SecurityGroup(
            self,
            "runner",
            name=names.runner_security_group,
            description="Lambda Test Runner: reaches the database and AWS APIs only",
            vpc_id=config.vpc.vpc_id,
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

        endpoints = config.vpc.endpoints
        self.vpc: DataAwsVpc | None = None
        if any(endpoints.mode(service) != "none" for service in INTERFACE_SERVICES):
            self.vpc = self._vpc_with_private_dns()
        self.interface_endpoint_services: list[str] = []
        self._s3(endpoints.s3)
        created = [s for s in INTERFACE_SERVICES if endpoints.mode(s) == "create"]
        if created:
            self._created_interface_endpoints(created)
        existing = [s for s in INTERFACE_SERVICES if endpoints.mode(s) == "exists"]
        if existing:
            self._existing_interface_endpoints(existing)
        if endpoints.with_mode("none"):
            # A NAT gateway carries the rest of the AWS API traffic; HTTPS is all that goes out.
            self._egress(
                "runner_https_via_nat",
                "HTTPS to AWS APIs through the NAT gateway",
                cidr_ipv4="0.0.0.0/0",
            )

    def outlive(self, role_policy: TerraformResource) -> None:
        """Destroy the runner's security group before `role_policy`.

        Lambda deletes a VPC function's network interfaces some time after the function, with the
        permissions of the function's role; deleting the security group waits for them. Ordered
        this way, `destroy` removes the function, then waits on the group while the role may
        still delete the interfaces, and only then removes the policy.
        """
        # cdktf renders a reference (`${...}`) here; depends_on takes the bare address.
        address = f"{role_policy.terraform_resource_type}.{role_policy.friendly_unique_id}"
        self.runner_security_group.depends_on = [address]

    def _vpc_with_private_dns(self) -> DataAwsVpc:
        return DataAwsVpc(
            self,
            "vpc",
            id=self.config.vpc.vpc_id,
            lifecycle=TerraformResourceLifecycle(
                postcondition=[
                    Postcondition(
                        condition=PRIVATE_DNS_CONDITION,
                        error_message=(
                            f"VPC {self.config.vpc.vpc_id} needs enableDnsSupport and "
                            "enableDnsHostnames for the interface endpoints' private DNS (aws ec2 "
                            "modify-vpc-attribute --enable-dns-support / --enable-dns-hostnames), "
                            'or set those endpoints to "none" in vpc.endpoints when a NAT gateway '
                            "carries the traffic."
                        ),
                    )
                ]
            ),
        )

    def _egress(
        self,
        id_: str,
        description: str,
        *,
        prefix_list_id: str | None = None,
        referenced_security_group_id: str | None = None,
        cidr_ipv4: str | None = None,
    ) -> None:
        """HTTPS out of the runner's group to one destination."""
        VpcSecurityGroupEgressRule(
            self,
            id_,
            security_group_id=self.runner_security_group.id,
            description=description,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            prefix_list_id=prefix_list_id,
            referenced_security_group_id=referenced_security_group_id,
            cidr_ipv4=cidr_ipv4,
        )

    def _s3(self, mode: str) -> None:
        vpc = self.config.vpc
        service = f"com.amazonaws.{self.config.region}.s3"
        if mode == "create":
            self.s3_endpoint = VpcEndpoint(
                self,
                "s3",
                vpc_id=vpc.vpc_id,
                service_name=service,
                vpc_endpoint_type="Gateway",
                route_table_ids=list(vpc.private_route_table_ids),
                tags={"Name": f"{self.config.names.prefix}-s3"},
            )
            prefix_list = self.s3_endpoint.prefix_list_id
        elif mode == "exists":
            # Read the VPC's own gateway endpoint: a route table holds one route per service, so a
            # second one would fail. The read fails the plan when there is none.
            existing = DataAwsVpcEndpoint(
                self,
                "existing_s3",
                vpc_id=vpc.vpc_id,
                service_name=service,
                filter=[{"name": "vpc-endpoint-type", "values": ["Gateway"]}],
            )
            prefix_list = existing.prefix_list_id
        else:
            return
        self._egress(
            "runner_to_s3", "HTTPS to S3 through the gateway endpoint", prefix_list_id=prefix_list
        )

    def _created_interface_endpoints(self, services: list[str]) -> None:
        names = self.config.names
        vpc = self.config.vpc
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
        self._egress(
            "runner_to_endpoints",
            "HTTPS to the interface VPC endpoints",
            referenced_security_group_id=self.endpoints_security_group.id,
        )
        for setting in services:
            for service in INTERFACE_SERVICES[setting]:
                self.interface_endpoint_services.append(service)
                VpcEndpoint(
                    self,
                    service.replace(".", "_"),
                    vpc_id=vpc.vpc_id,
                    service_name=f"com.amazonaws.{self.config.region}.{service}",
                    vpc_endpoint_type="Interface",
                    subnet_ids=list(vpc.private_subnet_ids),
                    security_group_ids=[self.endpoints_security_group.id],
                    private_dns_enabled=True,
                    tags={"Name": f"{names.prefix}-{service}"},
                )

    def _existing_interface_endpoints(self, services: list[str]) -> None:
        vpc = self.config.vpc
        assert self.vpc is not None
        for setting in services:
            for service in INTERFACE_SERVICES[setting]:
                name = f"com.amazonaws.{self.config.region}.{service}"
                DataAwsVpcEndpoint(
                    self,
                    f"existing_{service.replace('.', '_')}",
                    vpc_id=vpc.vpc_id,
                    service_name=name,
                    lifecycle=TerraformResourceLifecycle(
                        postcondition=[
                            Postcondition(
                                condition="${self.private_dns_enabled}",
                                error_message=(
                                    f"The VPC's {name} endpoint has private DNS off, so the "
                                    "runner would not reach it by the service's name: turn it on, "
                                    f'or set vpc.endpoints.{setting} to "create" or "none".'
                                ),
                            )
                        ]
                    ),
                )
        # The existing endpoints have security groups of their own, which must accept HTTPS from
        # the VPC (or from this stack's runner group); the runner may send HTTPS into the VPC.
        self._egress(
            "runner_to_existing_endpoints",
            "HTTPS to the VPC's existing interface endpoints",
            cidr_ipv4=self.vpc.cidr_block,
        )
