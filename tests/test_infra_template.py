"""The ARM template in infra/: the event subscription, the resource types and API versions, the roles, no keys in app settings,
the hardening rules (TLS, publishing credentials, role scopes and names, name limits, storage redundancy, Python version, delivery
alerts), each shown to catch a broken copy of the template, and the scanner's configuration."""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.event_types import ALIASES, CANONICAL_TYPES
from tests.arm_expressions import Call, Environment, Runtime, assert_mutation_caught, deployed_resources, edit, parse, resource_group

pytestmark = pytest.mark.unit  # reads files and builds clients; connects nowhere

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "infra" / "azuredeploy.json"
PARAMETERS_PATH = ROOT / "infra" / "azuredeploy.parameters.example.json"

Json = dict[str, Any]

# Microsoft's published built-in role IDs ("Azure built-in roles",
# learn.microsoft.com/azure/role-based-access-control/built-in-roles, Storage and Integration sections).
BUILTIN_ROLES: dict[str, str] = {
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "API Management Service Reader Role": "71522526-b88f-4d52-b57f-d31fc3546d0d",
    "EventGrid Data Sender": "d5a91429-5739-47e2-a06b-3470a27159e7",
    "Azure Event Hubs Data Receiver": "a638d3c7-ab3a-418d-83e6-5f17a39d4fde",
    "Monitoring Reader": "43d0d8ad-25c7-4714-9337-8ba259a9fe05",
}
ROLE_BY_GUID: dict[str, str] = {guid: name for name, guid in BUILTIN_ROLES.items()}

# Each resource type the template deploys, with its API version: a change here is a deliberate one.
EXPECTED_API_VERSIONS: dict[str, str] = {
    "Microsoft.Storage/storageAccounts": "2023-05-01",
    "Microsoft.Storage/storageAccounts/blobServices": "2023-05-01",
    "Microsoft.Storage/storageAccounts/blobServices/containers": "2023-05-01",
    "Microsoft.OperationalInsights/workspaces": "2022-10-01",
    "Microsoft.Insights/components": "2020-02-02",
    "Microsoft.EventGrid/topics": "2022-06-15",
    "Microsoft.EventGrid/systemTopics": "2022-06-15",
    "Microsoft.EventGrid/systemTopics/eventSubscriptions": "2022-06-15",
    "Microsoft.Web/serverfarms": "2024-04-01",
    "Microsoft.Web/sites": "2024-04-01",
    "Microsoft.Web/sites/basicPublishingCredentialsPolicies": "2024-04-01",
    "Microsoft.Authorization/roleAssignments": "2022-04-01",
    "Microsoft.Resources/deployments": "2022-09-01",
    "Microsoft.Insights/metricAlerts": "2018-03-01",
    "Microsoft.Insights/diagnosticSettings": "2021-05-01-preview",  # the newest the template reference lists; there is no GA version
    "Microsoft.Storage/storageAccounts/managementPolicies": "2023-05-01",
    "Microsoft.EventHub/namespaces": "2024-01-01",
    "Microsoft.EventHub/namespaces/eventhubs": "2024-01-01",
    "Microsoft.EventHub/namespaces/eventhubs/consumergroups": "2024-01-01",
    "Microsoft.EventHub/namespaces/authorizationRules": "2024-01-01",
}

FORBIDDEN_IN_SETTING_VALUES = ("AccountKey=", "SharedAccessSignature", "listKeys(", "listkeys", "SharedAccessKey", "DefaultEndpointsProtocol")
# Flex Consumption takes these from functionAppConfig or has no use for them.
FLEX_DEPRECATED_SETTINGS = ("FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE",
                            "WEBSITE_CONTENTSHARE", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "SCM_DO_BUILD_DURING_DEPLOYMENT")
SITE_PRINCIPAL = "[reference(resourceId('Microsoft.Web/sites', parameters('functionAppName')), '2024-04-01', 'Full').identity.principalId]"
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
APIM_ID = re.compile(r"^/subscriptions/[0-9a-f-]{36}/resourceGroups/[^/]+/providers/Microsoft\.ApiManagement/service/[A-Za-z0-9-]+$")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> Json:
    keys = [key for key, _ in pairs]
    duplicates = {key for key in keys if keys.count(key) > 1}
    assert not duplicates, f"duplicate keys {duplicates}"
    return dict(pairs)


def _load(path: Path) -> Json:
    loaded = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicate_keys)
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def template() -> Json:
    return _load(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def example_parameters() -> Json:
    return _load(PARAMETERS_PATH)


class Scope:
    """One template (the main one or an inner-scoped nested one) and the deployment resource that holds it."""

    def __init__(self, template: Json, holder: Json | None, parent: Scope | None) -> None:
        self.template = template
        self.holder = holder
        self.parent = parent

    @property
    def resources(self) -> list[Json]:
        resources = self.template.get("resources", [])
        assert isinstance(resources, list)
        return resources

    def resolve(self, value: Any) -> Any:
        """A literal, or `[parameters('x')]` followed to the value the deployment passes, or to the default."""
        match = re.fullmatch(r"\[parameters\('([^']+)'\)\]", value) if isinstance(value, str) else None
        if not match:
            return value
        name = match.group(1)
        if self.holder is not None and self.parent is not None:
            passed = self.holder["properties"]["parameters"][name]["value"]
            return self.parent.resolve(passed)
        return self.template["parameters"][name].get("defaultValue")


def _scopes(template: Json, holder: Json | None = None, parent: Scope | None = None) -> Iterator[Scope]:
    scope = Scope(template, holder, parent)
    yield scope
    for resource in scope.resources:
        if resource["type"] == "Microsoft.Resources/deployments":
            assert resource["properties"]["expressionEvaluationOptions"] == {"scope": "inner"}
            yield from _scopes(resource["properties"]["template"], resource, scope)


def _all_resources(template: Json) -> Iterator[tuple[Scope, Json]]:
    for scope in _scopes(template):
        for resource in scope.resources:
            yield scope, resource


def _only(template: Json, resource_type: str) -> tuple[Scope, Json]:
    found = [(scope, resource) for scope, resource in _all_resources(template) if resource["type"] == resource_type]
    assert len(found) == 1, f"{len(found)} resources of type {resource_type}"
    return found[0]


def _without_inner_templates(template: Json) -> Json:
    """The template's own text: nested inner-scoped templates have their own parameters and variables."""
    copied: Json = json.loads(json.dumps(template))
    for resource in copied.get("resources", []):
        if resource["type"] == "Microsoft.Resources/deployments":
            resource["properties"]["template"] = {}
    return copied


def _app_settings(template: Json) -> dict[str, str]:
    _, site = _only(template, "Microsoft.Web/sites")
    settings = site["properties"]["siteConfig"]["appSettings"]
    names = [setting["name"] for setting in settings]
    assert len(names) == len(set(names)), "an app setting is set twice"
    return {setting["name"]: setting["value"] for setting in settings}


def _role_assignments(template: Json) -> list[tuple[Scope, Json, str]]:
    """Each role assignment, its scope and the name of the built-in role it grants."""
    found: list[tuple[Scope, Json, str]] = []
    for scope, resource in _all_resources(template):
        if resource["type"] != "Microsoft.Authorization/roleAssignments":
            continue
        guids = GUID.findall(resource["properties"]["roleDefinitionId"])
        assert len(guids) == 1, resource["properties"]["roleDefinitionId"]
        assert guids[0] in ROLE_BY_GUID, f"{guids[0]} is not one of the published built-in roles used here"
        found.append((scope, resource, ROLE_BY_GUID[guids[0]]))
    return found


# --- the files ---


def test_schema_and_content_version(template: Json, example_parameters: Json) -> None:
    for scope in _scopes(template):
        at_subscription = scope.holder is not None and "resourceGroup" not in scope.holder and "location" in scope.holder
        schema = "/subscriptionDeploymentTemplate.json#" if at_subscription else "/deploymentTemplate.json#"
        assert scope.template["$schema"].endswith(schema)
        assert scope.template["contentVersion"] == "1.0.0.0"
    assert example_parameters["$schema"].endswith("/deploymentParameters.json#")
    assert example_parameters["contentVersion"] == "1.0.0.0"


def test_example_parameters_exist_in_the_template(template: Json, example_parameters: Json) -> None:
    declared = template["parameters"]
    for name, entry in example_parameters["parameters"].items():
        assert name in declared, f"the example sets {name}, which the template does not declare"
        assert set(entry) == {"value"}
    required = {name for name, spec in declared.items() if "defaultValue" not in spec}
    assert required <= set(example_parameters["parameters"]), "the example leaves a required parameter out"


def test_example_apim_instances(template: Json, example_parameters: Json) -> None:
    instances = example_parameters["parameters"]["apimInstances"]["value"]
    assert len(instances) >= 2
    for instance in instances:
        assert set(instance) <= {"resourceId", "location", "existingSystemTopicName", "gatewayLogs"}
        assert APIM_ID.match(instance["resourceId"]), instance["resourceId"]
    groups = {instance["resourceId"].split("/")[4] for instance in instances}
    assert len(groups) >= 2, "the example should show an APIM instance in another resource group"


def test_parameter_defaults_match_their_types(template: Json) -> None:
    python_types: dict[str, type | tuple[type, ...]] = {"string": str, "int": int, "bool": bool, "array": list, "object": dict}
    for scope in _scopes(template):
        for name, spec in scope.template.get("parameters", {}).items():
            if "defaultValue" not in spec:
                continue
            default = spec["defaultValue"]
            if isinstance(default, str) and default.startswith("["):
                assert spec["type"] == "string", name
                continue
            expected = python_types[spec["type"]]
            assert isinstance(default, expected), name
            if spec["type"] == "int":
                assert not isinstance(default, bool), name
            if "allowedValues" in spec:
                assert default in spec["allowedValues"], name


# --- the event subscription ---


def test_event_subscription_lists_the_30_canonical_types(template: Json) -> None:
    _, subscription = _only(template, "Microsoft.EventGrid/systemTopics/eventSubscriptions")
    included = subscription["properties"]["filter"]["includedEventTypes"]
    assert len(included) == 30
    assert len(set(included)) == len(included), "a type is listed twice"
    assert set(included) == set(CANONICAL_TYPES)
    assert not set(included) & set(ALIASES), "a legacy alias is listed"
    assert not any("SelfHostedGateway" in event_type for event_type in included)


def test_event_subscription_delivery(template: Json) -> None:
    scope, subscription = _only(template, "Microsoft.EventGrid/systemTopics/eventSubscriptions")
    properties = subscription["properties"]
    assert properties["eventDeliverySchema"] == "CloudEventSchemaV1_0"

    destination = properties["destination"]
    assert destination["endpointType"] == "AzureFunction"
    function_id = scope.resolve(destination["properties"]["resourceId"])
    assert function_id == "[format('{0}/functions/apim_events', resourceId('Microsoft.Web/sites', parameters('functionAppName')))]"
    assert '@app.function_name("apim_events")' in (ROOT / "function_app.py").read_text(encoding="utf-8")

    retry = properties["retryPolicy"]
    assert scope.resolve(retry["maxDeliveryAttempts"]) == 30
    assert scope.resolve(retry["eventTimeToLiveInMinutes"]) == 1440


def test_event_subscription_dead_letters_with_the_topic_identity(template: Json) -> None:
    scope, subscription = _only(template, "Microsoft.EventGrid/systemTopics/eventSubscriptions")
    properties = subscription["properties"]
    assert "deadLetterDestination" not in properties, "one dead-letter destination, with the topic's identity"
    dead_letter = properties["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"] == {"type": "SystemAssigned"}
    destination = dead_letter["deadLetterDestination"]
    assert destination["endpointType"] == "StorageBlob"
    assert scope.resolve(destination["properties"]["blobContainerName"]) == "apim-events-deadletter"
    assert "Microsoft.Storage/storageAccounts" in scope.resolve(destination["properties"]["resourceId"])

    _, topic = _only(template, "Microsoft.EventGrid/systemTopics")
    assert topic["identity"] == {"type": "SystemAssigned"}
    assert topic["properties"]["topicType"] == "Microsoft.ApiManagement.Service"
    writers = [(scope, resource) for scope, resource, role in _role_assignments(template)
               if role == "Storage Blob Data Contributor" and "operatorPrincipalId" not in resource["properties"]["principalId"]]
    assert len(writers) == 1
    scope, writer = writers[0]
    assert scope.holder is not None and scope.holder["copy"]["name"] == "deadLetterWriters", "one writer per system topic"
    assert "systemTopicPrincipalId" in scope.resolve(writer["properties"]["principalId"])


def test_event_subscription_only_on_request(template: Json) -> None:
    scope, _ = _only(template, "Microsoft.EventGrid/systemTopics/eventSubscriptions")
    holder = scope.holder
    assert holder is not None, "the event subscription lives in a nested deployment per APIM instance"
    assert holder["condition"] == "[parameters('deployEventSubscription')]"
    spec = template["parameters"]["deployEventSubscription"]
    assert spec["type"] == "bool"
    assert spec["defaultValue"] is False
    assert holder["copy"]["count"] == "[length(variables('instances'))]", "one event subscription per APIM instance"


def test_one_nested_deployment_per_apim_instance(template: Json) -> None:
    deployments = [resource for resource in template["resources"] if resource["type"] == "Microsoft.Resources/deployments"]
    per_instance = {deployment["copy"]["name"]: deployment for deployment in deployments if "copy" in deployment}
    assert set(per_instance) == {"apimSetup", "deadLetterWriters", "apimEventSubscriptions", "activityLogReaders"}
    assert len(deployments) == 5, "and one for the function app's roles"
    readers = per_instance.pop("activityLogReaders")  # one per subscription, not per instance
    assert readers["copy"]["count"] == "[length(variables('activityLogSubscriptions'))]"
    for name, deployment in per_instance.items():
        assert deployment["copy"]["count"] == "[length(variables('instances'))]"
        if name == "deadLetterWriters":  # the dead-letter container is in this resource group
            assert "subscriptionId" not in deployment and "resourceGroup" not in deployment
        else:
            assert "subscriptionId" in deployment["subscriptionId"] and "resourceGroup" in deployment["resourceGroup"]
    instances = template["variables"]["copy"]
    by_name = {entry["name"]: entry for entry in instances}
    assert by_name["instances"]["count"] == "[length(parameters('apimInstances'))]"
    fields = by_name["instances"]["input"]
    assert "split(" in fields["subscriptionId"] and "[2]" in fields["subscriptionId"]
    assert "split(" in fields["resourceGroup"] and "[4]" in fields["resourceGroup"]
    assert "existingSystemTopicName" in fields["systemTopicName"]
    assert "resourceGroup().location" in fields["location"]


# --- resources ---


def test_resource_types_and_api_versions(template: Json) -> None:
    seen: dict[str, set[str]] = {}
    for _, resource in _all_resources(template):
        seen.setdefault(resource["type"], set()).add(resource["apiVersion"])
    assert set(seen) == set(EXPECTED_API_VERSIONS)
    for resource_type, versions in seen.items():
        assert versions == {EXPECTED_API_VERSIONS[resource_type]}, resource_type
    # The API versions given to reference() agree with the deployed resources'.
    checked = 0
    for call in _calls(json.dumps(template), "reference"):
        target, version, *_ = _split_arguments(call)
        types = re.findall(r"'(Microsoft\.[A-Za-z]+/[A-Za-z/]+)'", target)
        assert len(types) == 1, f"reference({call}) names no single resource type"
        assert version == f"'{EXPECTED_API_VERSIONS[types[0]]}'", f"reference({call})"
        checked += 1
    assert checked >= 10


def test_flex_consumption_plan_and_site(template: Json) -> None:
    _, plan = _only(template, "Microsoft.Web/serverfarms")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True

    _, site = _only(template, "Microsoft.Web/sites")
    assert site["kind"] == "functionapp,linux"
    assert site["identity"] == {"type": "SystemAssigned"}
    assert site["properties"]["httpsOnly"] is True
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "[parameters('pythonVersion')]"}
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {"type": "SystemAssignedIdentity"}
    assert "deploymentContainerName" in storage["value"]
    assert set(config["scaleAndConcurrency"]) == {"maximumInstanceCount", "instanceMemoryMB"}


def test_storage_account_is_locked_down(template: Json) -> None:
    _, account = _only(template, "Microsoft.Storage/storageAccounts")
    assert account["kind"] == "StorageV2"
    properties = account["properties"]
    assert properties["supportsHttpsTrafficOnly"] is True
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["allowSharedKeyAccess"] is False
    assert properties["allowBlobPublicAccess"] is False
    containers = [resource for _, resource in _all_resources(template)
                  if resource["type"] == "Microsoft.Storage/storageAccounts/blobServices/containers"]
    assert len(containers) == 2
    assert all(container["properties"]["publicAccess"] == "None" for container in containers)
    assert any("deadLetterContainerName" in container["name"] for container in containers)
    assert template["parameters"]["deadLetterContainerName"]["defaultValue"] == "apim-events-deadletter"


def test_alerts_topic(template: Json) -> None:
    _, topic = _only(template, "Microsoft.EventGrid/topics")
    assert topic["condition"] == "[parameters('deployAlertsTopic')]"
    assert template["parameters"]["deployAlertsTopic"]["defaultValue"] is True
    assert topic["properties"]["inputSchema"] == "CloudEventSchemaV1_0"
    assert topic["properties"]["disableLocalAuth"] is True
    assert topic["identity"] == {"type": "SystemAssigned"}, "a subscriber may deliver with the topic's identity"


def test_application_insights_is_workspace_based(template: Json) -> None:
    _, component = _only(template, "Microsoft.Insights/components")
    assert "Microsoft.OperationalInsights/workspaces" in component["properties"]["WorkspaceResourceId"]


# --- roles ---


def test_role_guids_are_published_built_in_roles() -> None:
    assert len(set(BUILTIN_ROLES.values())) == len(BUILTIN_ROLES)
    assert all(GUID.fullmatch(guid) for guid in BUILTIN_ROLES.values())


def test_role_assignments_are_well_formed(template: Json) -> None:
    assignments = _role_assignments(template)
    assert assignments
    for _, resource, role in assignments:
        assert resource["name"].startswith("[guid("), "role assignment names are deterministic"
        assert role in resource["comments"], f"the comment names another role than {role}"
        assert resource["properties"]["roleDefinitionId"].startswith("[subscriptionResourceId('Microsoft.Authorization/roleDefinitions'")
        principal_type = resource["properties"]["principalType"]
        if "operatorPrincipalId" in resource["properties"]["principalId"]:
            assert principal_type == "[parameters('operatorPrincipalType')]"
            assert resource["condition"] == "[not(empty(parameters('operatorPrincipalId')))]"
        else:
            assert principal_type == "ServicePrincipal"


def test_function_app_roles(template: Json) -> None:
    assignments = _role_assignments(template)

    def to_app(role: str) -> list[tuple[Scope, Json]]:
        return [(scope, resource) for scope, resource, name in assignments
                if name == role and scope.resolve(resource["properties"]["principalId"]) == SITE_PRINCIPAL]

    for role in ("Storage Table Data Contributor", "Storage Blob Data Owner", "Storage Queue Data Contributor"):
        granted = to_app(role)
        assert len(granted) == 1, role
        scope, resource = granted[0]
        assert scope.holder is not None and "copy" not in scope.holder, "the app's roles are in one nested deployment"
        assert resource["scope"] == "[format('Microsoft.Storage/storageAccounts/{0}', parameters('storageAccountName'))]"

    readers = to_app("API Management Service Reader Role")
    assert len(readers) == 1
    scope, reader = readers[0]
    assert scope.holder is not None and scope.holder["copy"]["name"] == "apimSetup", "the reader role is given per APIM instance"
    assert reader["scope"] == "[format('Microsoft.ApiManagement/service/{0}', parameters('apimName'))]"

    senders = to_app("EventGrid Data Sender")
    assert len(senders) == 1
    scope, sender = senders[0]
    assert sender["condition"] == "[parameters('deployAlertsTopic')]"
    assert scope.holder is not None
    assert scope.holder["properties"]["parameters"]["deployAlertsTopic"] == {"value": "[parameters('deployAlertsTopic')]"}
    assert sender["scope"].startswith("[format('Microsoft.EventGrid/topics/{0}'")


# --- app settings ---


def test_app_settings_hold_no_keys(template: Json) -> None:
    settings = _app_settings(template)
    for name, value in settings.items():
        if name == "APPLICATIONINSIGHTS_CONNECTION_STRING":
            continue
        for forbidden in FORBIDDEN_IN_SETTING_VALUES:
            assert forbidden.lower() not in value.lower(), f"{name} holds {forbidden}"
        assert not name.upper().endswith("KEY"), f"{name} looks like a key"
        assert "CONNECTIONSTRING" not in name.upper().replace("_", ""), name
    assert "ALERTS_TOPIC_KEY" not in settings
    assert "AzureWebJobsStorage" not in settings, "the host storage is identity-based"
    assert "INVENTORY_STORAGE" not in settings, "the inventory storage is identity-based"
    assert "listkeys" not in json.dumps(template).lower(), "the template reads no keys at all"


def test_app_settings_identity_based_connections(template: Json) -> None:
    settings = _app_settings(template)
    assert settings["AzureWebJobsStorage__accountName"] == "[parameters('storageAccountName')]"
    assert "primaryEndpoints.table" in settings["INVENTORY_STORAGE__tableServiceUri"]
    assert settings["INVENTORY_STORAGE__credential"] == "managedidentity"
    assert "Microsoft.EventGrid/topics" in settings["ALERTS_TOPIC_ENDPOINT"] and ".endpoint" in settings["ALERTS_TOPIC_ENDPOINT"]
    assert settings["ENRICH_FROM_ARM"] == "true"
    assert settings["RECONCILE_SERVICES"] == "[join(variables('apimResourceIds'), ',')]"
    assert settings["RECONCILE_SCHEDULE"] == "[parameters('reconcileSchedule')]"
    assert template["parameters"]["reconcileSchedule"]["defaultValue"] == "0 30 */6 * * *"
    assert settings["PYTHON_ISOLATE_WORKER_DEPENDENCIES"] == "1"
    assert "ConnectionString" in settings["APPLICATIONINSIGHTS_CONNECTION_STRING"]
    for name in FLEX_DEPRECATED_SETTINGS:
        assert name not in settings, f"{name} is not used on Flex Consumption"


@pytest.mark.parametrize(("setting", "parameter", "default"), [
    ("RETENTION_TOMBSTONE_DAYS", "retentionTombstoneDays", 90),
    ("RETENTION_HISTORY_DAYS", "retentionHistoryDays", 365),
    ("RETENTION_REJECTED_DAYS", "retentionRejectedDays", 30),
    ("RETENTION_SENT_ALERTS_DAYS", "retentionSentAlertsDays", 30),
])
def test_retention_settings(template: Json, setting: str, parameter: str, default: int) -> None:
    assert _app_settings(template)[setting] == f"[string(parameters('{parameter}'))]"
    assert template["parameters"][parameter]["defaultValue"] == default


def test_outputs(template: Json) -> None:
    outputs = template["outputs"]
    for name in ("functionAppName", "functionAppPrincipalId", "storageAccountName", "tableEndpoint", "alertsTopicEndpoint",
                 "deadLetterContainerUrl"):
        assert name in outputs, name
    assert "primaryEndpoints.table" in outputs["tableEndpoint"]["value"]
    dead_letter = outputs["deadLetterContainerUrl"]["value"]
    assert "primaryEndpoints.blob" in dead_letter and "parameters('deadLetterContainerName')" in dead_letter


# --- hardening: each rule is a check, run on the template and on broken copies of it (MUTATIONS) ---

# Microsoft's "Flex Consumption plan deprecations" (App settings reference for Azure Functions, December 2025 copy):
# site properties not to set on Flex Consumption. minTlsVersion, scmMinTlsVersion and http20Enabled are not among them.
FLEX_DEPRECATED_SITE_PROPERTIES = (
    "ftpsState", "use32BitWorkerProcess", "isReserved", "IsXenon", "windowsFxVersion", "alwaysOn", "preWarmedInstanceCount",
    "functionAppScaleLimit", "containerSize", "javaVersion", "powerShellVersion", "netFrameworkVersion", "linuxFxVersion",
    "dnsConfiguration", "vnetBackupRestoreEnabled", "vnetContentShareEnabled", "vnetImagePullEnabled", "vnetRouteAllEnabled",
)
# Python versions that Flex Consumption runs GA and CI tests; the newest is the default.
PYTHON_VERSIONS = ["3.11", "3.12", "3.13"]
STORAGE_SKUS = {"Standard_LRS", "Standard_ZRS", "Standard_GRS", "Standard_RAGRS", "Standard_GZRS", "Standard_RAGZRS"}
DELIVERY_METRICS = {"DeadLetteredCount", "DeliveryAttemptFailCount"}  # Microsoft.EventGrid/systemTopics metrics

# Length and characters of each name segment, by resource type ("Naming rules and restrictions for Azure resources";
# system topics, absent there, as the azurerm provider validates them: 3-128 letters, digits and hyphens).
_ALNUM_HYPHENS_INSIDE = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
NAME_RULES: dict[str, tuple[int, int, str]] = {
    "Microsoft.Storage/storageAccounts": (3, 24, r"[a-z0-9]+"),
    "Microsoft.Storage/storageAccounts/blobServices": (7, 7, r"default"),
    "Microsoft.Storage/storageAccounts/blobServices/containers": (3, 63, r"[a-z0-9](?:-?[a-z0-9])*"),
    "Microsoft.OperationalInsights/workspaces": (4, 63, _ALNUM_HYPHENS_INSIDE),
    "Microsoft.Insights/components": (1, 260, r"[^%&\\?/\x00-\x1f]*[^%&\\?/\x00-\x1f. ]"),
    "Microsoft.Insights/metricAlerts": (1, 260, r"[^*#&+:<>?@%{}\\/|\x00-\x1f]*[^*#&+:<>?@%{}\\/|\x00-\x1f. ]"),
    "Microsoft.EventGrid/topics": (3, 50, r"[A-Za-z0-9-]+"),
    "Microsoft.EventGrid/systemTopics": (3, 128, r"[A-Za-z0-9-]+"),
    "Microsoft.EventGrid/systemTopics/eventSubscriptions": (3, 64, r"[A-Za-z0-9-]+"),
    "Microsoft.Web/serverfarms": (1, 60, r"[A-Za-z0-9-]+"),
    "Microsoft.Web/sites": (2, 60, _ALNUM_HYPHENS_INSIDE),
    "Microsoft.Web/sites/basicPublishingCredentialsPolicies": (3, 3, r"scm|ftp"),
    "Microsoft.Authorization/roleAssignments": (36, 36, GUID.pattern),
    "Microsoft.Resources/deployments": (1, 64, r"[A-Za-z0-9_().-]+"),
    "Microsoft.Insights/diagnosticSettings": (1, 260, r"[^*#&+:<>?@%{}\\/|\x00-\x1f]+"),
    "Microsoft.Storage/storageAccounts/managementPolicies": (7, 7, r"default"),
    "Microsoft.EventHub/namespaces": (6, 50, r"[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]"),
    "Microsoft.EventHub/namespaces/eventhubs": (1, 256, r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"),
    "Microsoft.EventHub/namespaces/eventhubs/consumergroups": (1, 50, r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"),
    "Microsoft.EventHub/namespaces/authorizationRules": (1, 256, r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"),
}
# Parameters that are resource names as given: their declared lengths must fit the type's rule.
NAME_PARAMETERS = {
    "functionAppName": "Microsoft.Web/sites",
    "storageAccountName": "Microsoft.Storage/storageAccounts",
    "alertsTopicName": "Microsoft.EventGrid/topics",
    "eventSubscriptionName": "Microsoft.EventGrid/systemTopics/eventSubscriptions",
    "deadLetterContainerName": "Microsoft.Storage/storageAccounts/blobServices/containers",
    "gatewayLogsDiagnosticSettingName": "Microsoft.Insights/diagnosticSettings",
    "eventHubNamespaceName": "Microsoft.EventHub/namespaces",
    "gatewayLogsEventHubName": "Microsoft.EventHub/namespaces/eventhubs",
    "activityLogsEventHubName": "Microsoft.EventHub/namespaces/eventhubs",
    "logsConsumerGroup": "Microsoft.EventHub/namespaces/eventhubs/consumergroups",
}
TEST_SUBSCRIPTION = "11111111-1111-1111-1111-111111111111"
OPERATOR = "22222222-2222-2222-2222-222222222222"
ACTION_GROUP = f"/subscriptions/{TEST_SUBSCRIPTION}/resourceGroups/rg-ops/providers/Microsoft.Insights/actionGroups/apim-oncall"


@functools.cache
def _example_parameters() -> Json:
    return _load(PARAMETERS_PATH)


def _example_values() -> Json:
    return {name: entry["value"] for name, entry in _example_parameters()["parameters"].items()}


def _main(template: Json, **overrides: Any) -> Environment:
    """The template with the example parameters and these overrides, in a test resource group."""
    return Environment(template, {**_example_values(), **overrides}, resource_group(TEST_SUBSCRIPTION, "rg-apim-inventory"))


def _deployment(template: Json, **overrides: Any) -> list[tuple[Environment, Json]]:
    """Every resource the template deploys with the example parameters and these overrides, evaluated."""
    return list(deployed_resources(_main(template, **overrides)))


def _site_properties(template: Json) -> Json:
    properties = _only(template, "Microsoft.Web/sites")[1]["properties"]
    assert isinstance(properties, dict)
    return properties


def _nested_template(template: Json, loop: str) -> Json:
    holder = next(resource for resource in template["resources"] if resource.get("copy", {}).get("name") == loop)
    nested: Json = holder["properties"]["template"]
    return nested


def check_site_hardening(template: Json) -> None:
    properties = _site_properties(template)
    config = properties["siteConfig"]
    assert config.get("minTlsVersion") == "1.2"
    assert config.get("scmMinTlsVersion") == "1.2"
    assert config.get("http20Enabled") is True
    assert properties["httpsOnly"] is True
    present = {key.lower() for key in (*properties, *config)}
    for refused in FLEX_DEPRECATED_SITE_PROPERTIES:
        assert refused.lower() not in present, f"{refused} is deprecated on Flex Consumption"


def check_basic_publishing_off(template: Json) -> None:
    policies = [(environment, resource) for environment, resource in _deployment(template)
                if resource["type"] == "Microsoft.Web/sites/basicPublishingCredentialsPolicies"]
    site_name = _main(template).value("[parameters('functionAppName')]")
    names = {environment.value(resource["name"]) for environment, resource in policies}
    assert names == {f"{site_name}/scm", f"{site_name}/ftp"}
    for environment, resource in policies:
        assert "condition" not in resource
        assert environment.value(resource["properties"]) == {"allow": False}
        assert "[resourceId('Microsoft.Web/sites', parameters('functionAppName'))]" in resource["dependsOn"]


def _principal(environment: Environment, assignment: Json) -> str:
    """Whose role this is: the app, a system topic, or the operator."""
    value = environment.value(assignment["properties"]["principalId"])
    if isinstance(value, Runtime) and "Microsoft.Web/sites/" in value.origin and value.origin.endswith("identity.principalId"):
        return "app"
    if isinstance(value, Runtime) and value.origin.endswith("outputs.systemTopicPrincipalId.value"):
        return "topic"
    assert value == OPERATOR, f"unknown principal {value}"
    return "operator"


def _role_instances(template: Json) -> list[tuple[Environment, Json, str, str, str]]:
    """Each role assignment deployed, with an operator: its environment, the resource, whose, which role, and its scope path."""
    found = []
    for environment, resource in _deployment(template, operatorPrincipalId=OPERATOR):
        if resource["type"] != "Microsoft.Authorization/roleAssignments":
            continue
        role = ROLE_BY_GUID[environment.value(resource["properties"]["roleDefinitionId"]).rsplit("/", 1)[-1]]
        scope = environment.value(resource["scope"]) if "scope" in resource else environment.group["id"]  # none: the deployment's own
        found.append((environment, resource, _principal(environment, resource), role, scope))
    return found


def check_role_scopes(template: Json) -> None:
    main = _main(template)
    account = main.value("[format('Microsoft.Storage/storageAccounts/{0}', parameters('storageAccountName'))]")
    dead_letter = main.value("[parameters('deadLetterContainerName')]")
    container = f"{account}/blobServices/default/containers/{dead_letter}"
    roles = _role_instances(template)
    topics = [(role, scope) for _, _, whose, role, scope in roles if whose == "topic"]
    assert len(topics) == len(_example_values()["apimInstances"]), "one dead-letter writer per system topic"
    assert set(topics) == {("Storage Blob Data Contributor", container)}, "system topics write the dead-letter container only"
    operator = {(role, scope) for _, _, whose, role, scope in roles if whose == "operator"}
    assert operator == {("Storage Table Data Contributor", account), ("Storage Blob Data Contributor", container)}
    for _, _, whose, role, scope in roles:
        if role.startswith("Storage Blob") and whose != "app":
            assert scope == container, f"{role} for the {whose} on {scope}: blob access beyond the dead-letter container"


def check_role_names(template: Json) -> None:
    """Each role assignment is named guid(its scope's id, its role, its principal id), and no two share a name."""
    names = []
    for environment, resource, _, _, scope in _role_instances(template):
        node = parse(resource["name"])
        assert isinstance(node, Call) and node.function == "guid" and len(node.arguments) == 3, resource["name"]
        scope_id, role_id, principal = node.arguments
        expected_scope = scope if scope.startswith("/") else f"{environment.group['id']}/providers/{scope}"
        assert environment.evaluate(scope_id) == expected_scope, f"{resource['name']} is not named from its scope"
        assert environment.value(resource["properties"]["roleDefinitionId"]).endswith(f"/{environment.evaluate(role_id)}")
        assert isinstance(principal, Call) and f"[{principal.source}]" == resource["properties"]["principalId"], \
            f"{resource['name']} is not named from its principal id"
        names.append(environment.value(resource["name"]))
    assert len(names) == len(set(names)), "two role assignments share a name"


def check_no_runtime_values_in_names(template: Json) -> None:
    """ARM evaluates reference() and list*() only in properties and outputs: never in a name, nor a variable a name uses."""
    runtime = re.compile(r"\b(?:reference|list[A-Za-z]*)\(")
    for scope in _scopes(template):
        variables = {entry["name"]: entry["input"] for entry in scope.template.get("variables", {}).get("copy", [])}
        variables |= {name: value for name, value in scope.template.get("variables", {}).items() if name != "copy"}
        for resource in scope.resources:
            text, seen = resource["name"], set()
            pending = re.findall(r"variables\('([^']+)'\)", text)
            while pending:
                name = pending.pop()
                if name not in seen:
                    seen.add(name)
                    used = json.dumps(variables[name])
                    text += used
                    pending += re.findall(r"variables\('([^']+)'\)", used)
            assert not runtime.search(text), f"{resource['type']} {resource['name']}: a name cannot use {runtime.search(text)}"


def _assert_names_fit(template: Json, **overrides: Any) -> None:
    for environment, resource in _deployment(template, operatorPrincipalId=OPERATOR, **overrides):
        namespace, *kinds = resource["type"].split("/")
        segments = environment.value(resource["name"]).split("/")
        assert len(segments) == len(kinds), f"{resource['type']} {resource['name']}"
        for depth, segment in enumerate(segments):
            kind = "/".join([namespace, *kinds[:depth + 1]])
            shortest, longest, pattern = NAME_RULES[kind]
            assert shortest <= len(segment) <= longest, f"{kind} name {segment!r}: {len(segment)} characters, not {shortest}-{longest}"
            assert re.fullmatch(pattern, segment), f"{kind} name {segment!r} has characters it may not have"


def _apim(name: str, existing_topic: str = "") -> Json:
    return {"resourceId": f"/subscriptions/{TEST_SUBSCRIPTION}/resourceGroups/rg-{len(name)}/providers/Microsoft.ApiManagement/service/{name}",
            "location": "westeurope", "existingSystemTopicName": existing_topic}


# APIM service names are 1-50 characters; an existing system topic's name is whatever it is (3-128).
EXTREME_INSTANCES = [_apim("a" + "b-c" * 16 + "d"), _apim("x"), _apim("y" * 50, existing_topic="z" * 128)]


def check_names_fit(template: Json) -> None:
    """Every name the template derives fits its type, for the shortest and longest values its name parameters allow."""
    parameters = template["parameters"]
    for parameter, kind in NAME_PARAMETERS.items():
        spec = parameters[parameter]
        assert "minLength" in spec and "maxLength" in spec, f"{parameter} declares no length bounds"
        shortest, longest, pattern = NAME_RULES[kind]
        assert shortest <= spec["minLength"] <= spec["maxLength"] <= longest, f"{parameter} allows names {kind} refuses"
        for length in (spec["minLength"], spec["maxLength"]):
            with_hyphens = ("ab-" * length)[:length - 1] + "z"
            for sample in {"a" * length, with_hyphens} if re.fullmatch(pattern, with_hyphens) else {"a" * length}:
                _assert_names_fit(template, apimInstances=EXTREME_INSTANCES, alertActionGroupId=ACTION_GROUP, **{parameter: sample})


def check_storage_sku(template: Json) -> None:
    spec = template["parameters"]["storageSku"]
    assert spec["defaultValue"] == "Standard_ZRS", "history, rejected events and tombstones cannot be rebuilt: zone-redundant by default"
    assert {"Standard_LRS", "Standard_ZRS"} <= set(spec["allowedValues"]) <= STORAGE_SKUS, "an LRS account must stay deployable"
    _, account = _only(template, "Microsoft.Storage/storageAccounts")
    assert account["sku"] == {"name": "[parameters('storageSku')]"}


def check_python_version(template: Json) -> None:
    spec = template["parameters"]["pythonVersion"]
    assert spec["type"] == "string"
    assert spec["allowedValues"] == PYTHON_VERSIONS
    assert spec["defaultValue"] == PYTHON_VERSIONS[-1]
    runtime = _site_properties(template)["functionAppConfig"]["runtime"]
    assert runtime == {"name": "python", "version": "[parameters('pythonVersion')]"}


def _alerts(template: Json, **overrides: Any) -> list[tuple[Environment, Json, bool]]:
    return [(environment, resource, environment.value(resource.get("condition", True)))
            for environment, resource in _deployment(template, **overrides) if resource["type"] == "Microsoft.Insights/metricAlerts"]


def check_delivery_alerts(template: Json) -> None:
    """With an action group, each system topic gets one alert per delivery metric; without one, or switched off, none."""
    assert template["parameters"]["alertActionGroupId"]["defaultValue"] == ""
    assert template["parameters"]["deployDeliveryAlerts"]["defaultValue"] is True
    assert not any(deployed for _, _, deployed in _alerts(template)), "no action group given: no alerts"
    assert not any(deployed for _, _, deployed in _alerts(template, alertActionGroupId=ACTION_GROUP, deployDeliveryAlerts=False))
    alerts = _alerts(template, alertActionGroupId=ACTION_GROUP)
    topics = {environment.value("[resourceId('Microsoft.EventGrid/systemTopics', parameters('systemTopicName'))]")
              for environment, _, _ in alerts}
    assert len(topics) == len(_example_values()["apimInstances"])
    watched: dict[str, set[str]] = {topic: set() for topic in topics}
    for environment, resource, deployed in alerts:
        assert deployed
        properties = environment.value(resource["properties"])
        assert properties["enabled"] is True and properties["targetResourceType"] == "Microsoft.EventGrid/systemTopics"
        assert properties["actions"] == [{"actionGroupId": ACTION_GROUP}]
        (topic,) = properties["scopes"]
        (criterion,) = properties["criteria"]["allOf"]
        assert criterion["metricNamespace"] == "Microsoft.EventGrid/systemTopics"
        assert criterion["timeAggregation"] == "Total" and criterion["operator"] == "GreaterThan"
        assert isinstance(criterion["threshold"], int) and not isinstance(criterion["threshold"], bool)
        watched[topic].add(criterion["metricName"])
    assert all(metrics == DELIVERY_METRICS for metrics in watched.values()), watched


# --- the logs: the diagnostic settings, the Event Hubs route, the lifecycle rule, their roles and settings ---

GATEWAY_LOGS_CATEGORY = [{"category": "GatewayLogs", "enabled": True}]
LOG_PREFIXES = ["insights-logs-gatewaylogs/", "insights-activity-logs/"]  # the containers Azure Monitor archives to
OTHER_SUBSCRIPTION = "33333333-3333-3333-3333-333333333333"
GIVEN_NAMESPACE = "/subscriptions/x/resourceGroups/r/providers/Microsoft.EventHub/namespaces/n"


def _diagnostic_settings(template: Json, **overrides: Any) -> list[tuple[Environment, Json, bool]]:
    return [(environment, resource, bool(environment.value(resource.get("condition", True))))
            for environment, resource in _deployment(template, **overrides) if resource["type"] == "Microsoft.Insights/diagnosticSettings"]


def check_gateway_logs_setting(template: Json) -> None:
    """Per APIM instance with gatewayLogs, one diagnostic setting on the instance: GatewayLogs only, to the account or the hub."""
    main = _main(template)
    account = main.value("[resourceId('Microsoft.Storage/storageAccounts', parameters('storageAccountName'))]")
    instances = _example_values()["apimInstances"]
    wanted = [instance.get("gatewayLogs", True) for instance in instances]
    assert True in wanted and False in wanted, "the example shows an instance left out"
    for destination in ("storage", "eventHub", "none"):
        found = _diagnostic_settings(template, gatewayLogsDestination=destination)
        assert [deployed for _, _, deployed in found] == [want and destination != "none" for want in wanted], destination
        for (environment, resource, _), instance in zip(found, instances, strict=True):
            assert environment.value(resource["scope"]) == f"Microsoft.ApiManagement/service/{instance['resourceId'].rsplit('/', 1)[-1]}"
            assert environment.group["id"] == instance["resourceId"].split("/providers/")[0], "deployed beside the instance"
            properties = environment.value(resource["properties"])
            assert properties["logs"] == GATEWAY_LOGS_CATEGORY, "GatewayLogs only"
            assert set(properties) == {"storageAccountId", "eventHubAuthorizationRuleId", "eventHubName", "logs"}, "no metrics, no retention policy"
            if destination == "storage":
                assert (properties["storageAccountId"], properties["eventHubAuthorizationRuleId"], properties["eventHubName"]) == (account, None, None)
            elif destination == "eventHub":
                assert properties["storageAccountId"] is None and properties["eventHubName"] == "insights-logs-gatewaylogs"
                assert properties["eventHubAuthorizationRuleId"].endswith("/authorizationRules/apim-inventory-diagnostics")
    for environment, resource, _ in _diagnostic_settings(template, gatewayLogsDestination="eventHub", existingEventHubNamespaceId=GIVEN_NAMESPACE):
        assert environment.value(resource["properties"])["eventHubAuthorizationRuleId"] == f"{GIVEN_NAMESPACE}/authorizationRules/RootManageSharedAccessKey"


def check_log_lifecycle(template: Json) -> None:
    """One lifecycle rule: delete (the only action append blobs allow) the archived logs, and nothing else, after the retention."""
    (environment, policy), = [(e, r) for e, r in _deployment(template) if r["type"] == "Microsoft.Storage/storageAccounts/managementPolicies"]
    assert "condition" not in policy
    assert environment.value(policy["name"]) == f"{environment.value('[parameters(' + chr(39) + 'storageAccountName' + chr(39) + ')]')}/default"
    (rule,) = environment.value(policy["properties"])["policy"]["rules"]
    assert rule["enabled"] is True and rule["type"] == "Lifecycle"
    assert rule["definition"]["filters"] == {"blobTypes": ["appendBlob", "blockBlob"], "prefixMatch": LOG_PREFIXES}
    assert rule["definition"]["actions"] == {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": 30}}}
    changed = [e.value(r["properties"]) for e, r in _deployment(template, logArchiveRetentionDays=400)
               if r["type"] == "Microsoft.Storage/storageAccounts/managementPolicies"]
    assert changed[0]["policy"]["rules"][0]["definition"]["actions"]["baseBlob"]["delete"]["daysAfterModificationGreaterThan"] == 400
    spec = template["parameters"]["logArchiveRetentionDays"]
    assert spec["defaultValue"] == 30 and spec["minValue"] >= 1


def _deployed_roles(template: Json, **overrides: Any) -> list[tuple[str, str, str]]:
    """(whose, role, scope) of each role assignment deployed with these parameters (an operator given)."""
    found = []
    for environment, resource in deployed_resources(_main(template, operatorPrincipalId=OPERATOR, **overrides), only_deployed=True):
        if resource["type"] != "Microsoft.Authorization/roleAssignments":
            continue
        guid = environment.value(resource["properties"]["roleDefinitionId"]).rsplit("/", 1)[-1]
        assert guid in ROLE_BY_GUID, f"{guid} is not one of the published built-in roles used here"
        scope = environment.value(resource["scope"]) if "scope" in resource else environment.group["id"]
        found.append((_principal(environment, resource), ROLE_BY_GUID[guid], scope))
    return found


def check_log_roles(template: Json) -> None:
    """The app reads the archive with its account-wide blob role, the hubs with Data Receiver on the namespace it created, and
    the Activity Log with Monitoring Reader on each subscription, given only on request."""
    main = _main(template)
    account = main.value("[format('Microsoft.Storage/storageAccounts/{0}', parameters('storageAccountName'))]")
    namespace = main.value("[format('Microsoft.EventHub/namespaces/{0}', parameters('eventHubNamespaceName'))]")
    storage = _deployed_roles(template)
    assert ("app", "Storage Blob Data Owner", account) in storage, "reading insights-* containers is covered by the app's account-wide role"
    assert not [r for r in storage if r[1] in ("Azure Event Hubs Data Receiver", "Monitoring Reader")], "nothing asked for"
    hub = _deployed_roles(template, gatewayLogsDestination="eventHub")
    assert [r for r in hub if r[1] == "Azure Event Hubs Data Receiver"] == [("app", "Azure Event Hubs Data Receiver", namespace)]
    given = _deployed_roles(template, gatewayLogsDestination="eventHub", existingEventHubNamespaceId=GIVEN_NAMESPACE)
    assert not [r for r in given if r[1] == "Azure Event Hubs Data Receiver"], "a given namespace's owner grants it"
    spec = template["parameters"]["grantActivityLogReader"]
    assert spec["type"] == "bool" and spec["defaultValue"] is False
    one = [r for r in _deployed_roles(template, grantActivityLogReader=True) if r[1] == "Monitoring Reader"]
    subscription = _example_values()["apimInstances"][0]["resourceId"].split("/")[2]
    assert one == [("app", "Monitoring Reader", f"/subscriptions/{subscription}")], "once per subscription, at its scope"
    two_subscriptions = [_apim("contoso"), {**_apim("fabrikam"), "resourceId": _apim("fabrikam")["resourceId"].replace(TEST_SUBSCRIPTION, OTHER_SUBSCRIPTION)},
                         _apim("northwind")]
    both = [r for r in _deployed_roles(template, grantActivityLogReader=True, apimInstances=two_subscriptions) if r[1] == "Monitoring Reader"]
    assert sorted(scope for _, _, scope in both) == [f"/subscriptions/{TEST_SUBSCRIPTION}", f"/subscriptions/{OTHER_SUBSCRIPTION}"]


def check_event_hub(template: Json) -> None:
    """The namespace, its hubs, consumer groups and rule exist only for an eventHub destination without a given namespace."""
    kinds = ("Microsoft.EventHub/namespaces", "Microsoft.EventHub/namespaces/eventhubs", "Microsoft.EventHub/namespaces/eventhubs/consumergroups",
             "Microsoft.EventHub/namespaces/authorizationRules")

    def made(**overrides: Any) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {kind: [] for kind in kinds}
        for environment, resource in _deployment(template, **overrides):
            if resource["type"] in kinds and environment.value(resource.get("condition", True)):
                found[resource["type"]].append(environment.value(resource["name"]))
        return found

    assert made() == {kind: [] for kind in kinds}, "the default (storage) creates no namespace"
    namespace = _main(template).value("[parameters('eventHubNamespaceName')]")
    gateway = made(gatewayLogsDestination="eventHub")
    assert gateway == {kinds[0]: [namespace], kinds[1]: [f"{namespace}/insights-logs-gatewaylogs"],
                       kinds[2]: [f"{namespace}/insights-logs-gatewaylogs/apim-inventory"], kinds[3]: [f"{namespace}/apim-inventory-diagnostics"]}
    both = made(gatewayLogsDestination="eventHub", activityLogsDestination="eventHub")
    assert both[kinds[1]] == [f"{namespace}/insights-logs-gatewaylogs", f"{namespace}/insights-activity-logs"]
    assert made(gatewayLogsDestination="eventHub", existingEventHubNamespaceId=GIVEN_NAMESPACE) == \
        {kind: [] for kind in kinds}
    _, namespace_resource = _only(template, kinds[0])
    assert namespace_resource["properties"]["minimumTlsVersion"] == "1.2"
    assert namespace_resource["sku"]["name"] == "Standard", "Basic has no consumer group but $Default"
    _, rule = _only(template, kinds[3])
    assert sorted(rule["properties"]["rights"]) == ["Listen", "Manage", "Send"], "what a diagnostic setting's rule needs"


LOG_SETTINGS = ("GATEWAY_LOGS_STORAGE__blobServiceUri", "GATEWAY_LOGS_STORAGE__credential", "ACTIVITY_LOGS_STORAGE__blobServiceUri",
                "ACTIVITY_LOGS_STORAGE__credential", "GATEWAY_LOGS_EVENTHUB", "GATEWAY_LOGS_EVENTHUB_CONNECTION__fullyQualifiedNamespace",
                "GATEWAY_LOGS_EVENTHUB_CONNECTION__credential", "ACTIVITY_LOGS_EVENTHUB", "ACTIVITY_LOGS_EVENTHUB_CONNECTION__fullyQualifiedNamespace",
                "ACTIVITY_LOGS_EVENTHUB_CONNECTION__credential", "LOGS_EVENTHUB_CONSUMER_GROUP")


def _log_settings(template: Json, **overrides: Any) -> dict[str, Any]:
    environment = _main(template, **overrides)
    return {name: environment.value(value) for name, value in _app_settings(template).items() if name in LOG_SETTINGS}


def check_log_settings(template: Json) -> None:
    """The chosen route's settings are set, identity-based; the other route's are empty (off)."""
    assert set(LOG_SETTINGS) <= set(_app_settings(template))
    stored = _log_settings(template)
    for name in ("GATEWAY_LOGS_STORAGE__blobServiceUri", "ACTIVITY_LOGS_STORAGE__blobServiceUri"):
        assert isinstance(stored[name], Runtime) and stored[name].origin.endswith("primaryEndpoints.blob"), name
    assert all(stored[name] == "managedidentity" for name in LOG_SETTINGS if name.endswith("__credential"))
    assert [stored[name] for name in ("GATEWAY_LOGS_EVENTHUB", "GATEWAY_LOGS_EVENTHUB_CONNECTION__fullyQualifiedNamespace",
                                      "ACTIVITY_LOGS_EVENTHUB", "ACTIVITY_LOGS_EVENTHUB_CONNECTION__fullyQualifiedNamespace")] == ["", "", "", ""]
    assert stored["LOGS_EVENTHUB_CONSUMER_GROUP"] == "apim-inventory"
    streamed = _log_settings(template, gatewayLogsDestination="eventHub", activityLogsDestination="eventHub", gatewayLogsEventHubName="gw")
    assert streamed["GATEWAY_LOGS_STORAGE__blobServiceUri"] == "" and streamed["ACTIVITY_LOGS_STORAGE__blobServiceUri"] == ""
    assert (streamed["GATEWAY_LOGS_EVENTHUB"], streamed["ACTIVITY_LOGS_EVENTHUB"]) == ("gw", "insights-activity-logs")
    for name in ("GATEWAY_LOGS_EVENTHUB_CONNECTION__fullyQualifiedNamespace", "ACTIVITY_LOGS_EVENTHUB_CONNECTION__fullyQualifiedNamespace"):
        value = streamed[name]
        assert isinstance(value, Runtime) and value.origin.startswith("replace(<replace(<reference(") and "serviceBusEndpoint" in value.origin, name
        assert "Microsoft.EventHub/namespaces" in value.origin, name


HARDENING_CHECKS = [check_site_hardening, check_basic_publishing_off, check_role_scopes, check_role_names,
                    check_no_runtime_values_in_names, check_names_fit, check_storage_sku, check_python_version,
                    check_delivery_alerts, check_gateway_logs_setting, check_log_lifecycle, check_log_roles, check_event_hub, check_log_settings]


@pytest.mark.parametrize("check", HARDENING_CHECKS, ids=lambda c: c.__name__)
def test_the_template_keeps_each_hardening_rule(template: Json, check: Callable[[Json], None]) -> None:
    check(template)


def test_every_hardening_rule_runs_on_the_template() -> None:
    assert set(HARDENING_CHECKS) == {v for k, v in globals().items() if k.startswith("check_") and callable(v)}


def test_every_resource_type_has_a_name_rule() -> None:
    assert set(NAME_RULES) >= set(EXPECTED_API_VERSIONS), "a resource type without a name rule"


@settings(max_examples=40, deadline=None)
@given(app=st.from_regex(r"[a-z0-9][a-z0-9-]{0,58}[a-z0-9]", fullmatch=True),
       apim=st.from_regex(r"[A-Za-z](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?", fullmatch=True))
def test_derived_names_fit_for_any_valid_app_and_apim_name(app: str, apim: str) -> None:
    _assert_names_fit(_load(TEMPLATE_PATH), functionAppName=app, apimInstances=[_apim(apim)], alertActionGroupId=ACTION_GROUP)


def _set(path: str, value: Any) -> Callable[[Json], None]:
    """A mutation that sets (or, with value ..., deletes) the item at a path such as 'parameters/storageSku/defaultValue'."""
    def mutate(template: Json) -> None:
        *parents, last = path.split("/")
        node: Any = template
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is ...:
            del node[last]
        else:
            node[int(last) if isinstance(node, list) else last] = value
    return mutate


def _resource(template: Json, resource_type: str, index: int = 0) -> Json:
    found = [resource for _, resource in _all_resources(template) if resource["type"] == resource_type]
    return found[index]




def _site_config(template: Json) -> Json:
    config: Json = _site_properties(template)["siteConfig"]
    return config


def _app_role(index: int) -> Callable[[Json], Json]:
    def select(template: Json) -> Json:
        holder = next(resource for resource in template["resources"] if resource["name"] == "[variables('appRolesDeploymentName')]")
        role: Json = holder["properties"]["template"]["resources"][index]
        return role
    return select


def _dead_letter_role(template: Json) -> Json:
    role: Json = _nested_template(template, "deadLetterWriters")["resources"][0]
    return role


def _operator_blob_role(template: Json) -> Json:
    return next(resource for resource in template["resources"]
                if resource["type"] == "Microsoft.Authorization/roleAssignments" and "blobServices" in resource["scope"])


def _metric_alert(template: Json) -> Json:
    return _resource(template, "Microsoft.Insights/metricAlerts")


def _diagnostic_setting(template: Json) -> Json:
    return _resource(template, "Microsoft.Insights/diagnosticSettings")


def _lifecycle_rule(template: Json) -> Json:
    rule: Json = _resource(template, "Microsoft.Storage/storageAccounts/managementPolicies")["properties"]["policy"]["rules"][0]
    return rule


def _receiver_role(template: Json) -> Json:
    return next(resource for _, resource in _all_resources(template) if resource["type"] == "Microsoft.Authorization/roleAssignments"
                and "a638d3c7-ab3a-418d-83e6-5f17a39d4fde" in resource["properties"]["roleDefinitionId"])


def _monitoring_readers(template: Json) -> Json:
    return next(resource for resource in template["resources"] if resource.get("copy", {}).get("name") == "activityLogReaders")


def _monitoring_reader(template: Json) -> Json:
    role: Json = _monitoring_readers(template)["properties"]["template"]["resources"][0]
    return role


def _setting(template: Json, name: str) -> Json:
    setting: Json = next(entry for entry in _site_config(template)["appSettings"] if entry["name"] == name)
    return setting


ACCOUNT_SCOPE = "[format('Microsoft.Storage/storageAccounts/{0}', parameters('storageAccountName'))]"
ACCOUNT_ID = "resourceId('Microsoft.Storage/storageAccounts', parameters('storageAccountName'))"

MUTATIONS: list[tuple[str, Callable[[Json], None], Callable[[Json], None]]] = [
    ("TLS 1.0", edit(_site_config, "minTlsVersion", "1.0"), check_site_hardening),
    ("no SCM TLS minimum", edit(_site_config, "scmMinTlsVersion", ...), check_site_hardening),
    ("HTTP/2 off", edit(_site_config, "http20Enabled", False), check_site_hardening),
    ("ftpsState set on Flex", edit(_site_config, "ftpsState", "Disabled"), check_site_hardening),
    ("alwaysOn set on Flex", edit(_site_config, "alwaysOn", False), check_site_hardening),
    ("SCM basic auth on", edit(lambda t: _resource(t, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")["properties"],
                                "allow", True), check_basic_publishing_off),
    ("FTP policy left out", _set("variables/publishingCredentialKinds", ["scm"]), check_basic_publishing_off),
    ("topic writes the whole account", edit(_dead_letter_role, "scope", ACCOUNT_SCOPE), check_role_scopes),
    ("operator reads the whole account", edit(_operator_blob_role, "scope", ACCOUNT_SCOPE), check_role_scopes),
    ("operator gets no dead-letter access", lambda t: t["resources"].remove(_operator_blob_role(t)), check_role_scopes),
    ("named from the site's resource id", edit(_app_role(0), "name",
        f"[guid({ACCOUNT_ID}, resourceId('Microsoft.Web/sites', parameters('storageAccountName')), '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')]"),
     check_role_names),
    ("named from another scope", edit(_app_role(2), "name",
        "[guid(resourceId('Microsoft.Web/sites', 'x'), '974c5e8b-45b9-4653-ba55-5f855dd0fb88', parameters('functionPrincipalId'))]"),
     check_role_names),
    ("role and principal swapped", edit(_app_role(1), "name",
        f"[guid({ACCOUNT_ID}, parameters('functionPrincipalId'), 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')]"), check_role_names),
    ("named without the principal", edit(_dead_letter_role, "name",
        "[guid(resourceId('Microsoft.Storage/storageAccounts/blobServices/containers', parameters('storageAccountName'), 'default', "
        "parameters('deadLetterContainerName')), 'ba92f5b4-2d11-453d-a403-e96b0029c9fe', parameters('storageAccountName'))]"),
     check_role_names),
    ("reference() in a nested name", edit(_dead_letter_role, "name",
        "[guid(reference(resourceId('Microsoft.Web/sites', 'x'), '2024-04-01', 'Full').identity.principalId)]"),
     check_no_runtime_values_in_names),
    ("listKeys() in a variable a name uses", _set("variables/appRolesDeploymentName",
        "[take(format('roles-{0}', listKeys(resourceId('Microsoft.Storage/storageAccounts', 'x'), '2023-05-01').keys[0].value), 64)]"),
     check_no_runtime_values_in_names),
    ("plan name not shortened", _set("variables/functionPlanName", "[format('{0}-plan', parameters('functionAppName'))]"), check_names_fit),
    ("workspace name not shortened", _set("variables/logAnalyticsName", "[format('{0}-logs', parameters('functionAppName'))]"),
     check_names_fit),
    ("alerts topic name not shortened", _set("parameters/alertsTopicName/defaultValue", "[format('{0}-alerts', parameters('functionAppName'))]"),
     check_names_fit),
    ("no maximum on the app name", _set("parameters/functionAppName/maxLength", ...), check_names_fit),
    ("storage account name up to 30", _set("parameters/storageAccountName/maxLength", 30), check_names_fit),
    ("LRS by default", _set("parameters/storageSku/defaultValue", "Standard_LRS"), check_storage_sku),
    ("SKU ignores the parameter", edit(lambda t: _resource(t, "Microsoft.Storage/storageAccounts"), "sku", {"name": "Standard_ZRS"}),
     check_storage_sku),
    ("Python 3.11 by default", _set("parameters/pythonVersion/defaultValue", "3.11"), check_python_version),
    ("Python version hard-coded", edit(lambda t: _site_properties(t)["functionAppConfig"]["runtime"], "version", "3.13"),
     check_python_version),
    ("Python 3.10 allowed", _set("parameters/pythonVersion/allowedValues", ["3.10", *PYTHON_VERSIONS]), check_python_version),
    ("a misspelt metric", edit(lambda t: _nested_template(t, "apimSetup")["variables"]["deliveryMetrics"][0], "metricName",
                                "DeadLetterCount"), check_delivery_alerts),
    ("alerts without an action group", edit(_metric_alert, "condition", ...), check_delivery_alerts),
    ("alerts notify no one", edit(lambda t: _metric_alert(t)["properties"], "actions", []), check_delivery_alerts),
    ("alert on the average", edit(lambda t: _metric_alert(t)["properties"]["criteria"]["allOf"][0], "timeAggregation", "Average"),
     check_delivery_alerts),
    ("another log category", edit(lambda t: _diagnostic_setting(t)["properties"], "logs", [{"category": "WebSocketConnectionLogs", "enabled": True}]),
     check_gateway_logs_setting),
    ("a setting on every instance", edit(_diagnostic_setting, "condition", ...), check_gateway_logs_setting),
    ("the hub named with storage too", edit(lambda t: _diagnostic_setting(t)["properties"], "eventHubName", "[parameters('gatewayLogsEventHubName')]"),
     check_gateway_logs_setting),
    ("metrics too", edit(lambda t: _diagnostic_setting(t)["properties"], "metrics", [{"category": "AllMetrics", "enabled": True}]),
     check_gateway_logs_setting),
    ("lifecycle deletes every blob", edit(lambda t: _lifecycle_rule(t)["definition"]["filters"], "prefixMatch", ...), check_log_lifecycle),
    ("lifecycle days hard-coded", edit(lambda t: _lifecycle_rule(t)["definition"]["actions"]["baseBlob"]["delete"],
                                        "daysAfterModificationGreaterThan", 7), check_log_lifecycle),
    ("block blobs only", edit(lambda t: _lifecycle_rule(t)["definition"]["filters"], "blobTypes", ["blockBlob"]), check_log_lifecycle),
    ("receiver whatever the route", edit(_receiver_role, "condition", ...), check_log_roles),
    ("Reader instead of Monitoring Reader", edit(lambda t: _monitoring_reader(t)["properties"], "roleDefinitionId",
        "[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'acdd72a7-3385-48ef-bd42-f606fba81ae7')]"), check_log_roles),
    ("Monitoring Reader always", edit(_monitoring_readers, "condition", ...), check_log_roles),
    ("a reader per instance", _set("variables/activityLogSubscriptions", "[variables('instanceSubscriptions')]"), check_log_roles),
    ("namespace whatever the route", edit(lambda t: _resource(t, "Microsoft.EventHub/namespaces"), "condition", ...), check_event_hub),
    ("namespace TLS 1.0", edit(lambda t: _resource(t, "Microsoft.EventHub/namespaces")["properties"], "minimumTlsVersion", "1.0"), check_event_hub),
    ("rule without Manage", edit(lambda t: _resource(t, "Microsoft.EventHub/namespaces/authorizationRules")["properties"], "rights", ["Send", "Listen"]),
     check_event_hub),
    ("hub setting hard-coded", edit(lambda t: _setting(t, "GATEWAY_LOGS_EVENTHUB"), "value", "insights-logs-gatewaylogs"), check_log_settings),
    ("archive setting whatever the route", edit(lambda t: _setting(t, "GATEWAY_LOGS_STORAGE__blobServiceUri"), "value",
        "[reference(resourceId('Microsoft.Storage/storageAccounts', parameters('storageAccountName')), '2023-05-01').primaryEndpoints.blob]"),
     check_log_settings),
    ("a route's credential left out", lambda t: _site_config(t)["appSettings"].remove(_setting(t, "ACTIVITY_LOGS_EVENTHUB_CONNECTION__credential")),
     check_log_settings),
]


@pytest.mark.parametrize(("mutate", "check"), [pytest.param(mutate, check, id=name) for name, mutate, check in MUTATIONS])
def test_each_rule_catches_a_broken_copy(template: Json, mutate: Callable[[Json], None], check: Callable[[Json], None]) -> None:
    assert_mutation_caught(template, mutate, check)


def test_every_hardening_rule_has_a_mutation() -> None:
    checks = {check for _, _, check in MUTATIONS}
    rules = {value for name, value in globals().items() if name.startswith("check_") and callable(value)}
    assert rules == checks, f"rules no mutation shows to work: {sorted(rule.__name__ for rule in rules - checks)}"


# --- the scanner's configuration ---


def test_every_skipped_scanner_check_says_why() -> None:
    lines = (ROOT / ".checkov.yml").read_text(encoding="utf-8").splitlines()
    start = lines.index("skip-check:")
    entries = lines[start + 1:]
    skipped = [(index, line) for index, line in enumerate(entries) if re.fullmatch(r"  - CKV_[A-Z0-9_]+", line)]
    assert skipped, "no skipped checks listed"
    assert len(entries) == 2 * len(skipped), "one reason line and one check per entry"
    for index, line in skipped:
        reason = entries[index - 1]
        assert index > 0 and reason.startswith("  # ") and len(reason) > 40, f"{line.strip()} is skipped without a reason"
    assert len({line for _, line in skipped}) == len(skipped), "a check is skipped twice"
    settings_text = "\n".join(lines[:start])
    for required in ("directory:\n  - infra", "framework:\n  - arm", "skip-download: true"):
        assert required in settings_text, required


# --- template sanity ---


def test_parameters_and_variables_referenced_exist(template: Json) -> None:
    for scope in _scopes(template):
        text = json.dumps(_without_inner_templates(scope.template))
        parameters = set(scope.template.get("parameters", {}))
        variables = {name for name in scope.template.get("variables", {}) if name != "copy"}
        variables |= {entry["name"] for entry in scope.template.get("variables", {}).get("copy", [])}
        for name in re.findall(r"parameters\('([^']+)'\)", text):
            assert name in parameters, f"parameters('{name}') is not declared"
        for name in re.findall(r"variables\('([^']+)'\)", text):
            assert name in variables, f"variables('{name}') is not declared"
        if scope.holder is not None:
            passed = set(scope.holder["properties"]["parameters"])
            assert passed == parameters, "a nested deployment passes other parameters than its template declares"


def test_expressions_are_balanced(template: Json) -> None:
    def strings(node: Any) -> Iterator[str]:
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from strings(value)
        elif isinstance(node, list):
            for item in node:
                yield from strings(item)

    for value in strings(template):
        if not (value.startswith("[") and value.endswith("]")) or value.startswith("[["):
            continue
        unquoted = re.sub(r"'(?:[^']|'')*'", "S", value[1:-1])
        assert "'" not in unquoted, f"unbalanced quotes in {value}"
        depth = 0
        for char in unquoted:
            depth += {"(": 1, ")": -1}.get(char, 0)
            assert depth >= 0, value
        assert depth == 0, f"unbalanced parentheses in {value}"


def _split_arguments(arguments: str) -> list[str]:
    """The top-level, comma-separated arguments of an ARM function call."""
    parts: list[str] = []
    depth, current, quoted = 0, "", False
    for char in arguments:
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "([":
            depth += 1
        elif not quoted and char in ")]":
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts


def _calls(text: str, function: str) -> Iterator[str]:
    """The argument text of each call of an ARM function in the text."""
    for match in re.finditer(rf"\b{function}\(", text):
        depth, quoted = 1, False
        for end in range(match.end(), len(text)):
            char = text[end]
            if char == "'":
                quoted = not quoted
            elif not quoted and char == "(":
                depth += 1
            elif not quoted and char == ")":
                depth -= 1
                if depth == 0:
                    yield text[match.end():end]
                    break


def test_depends_on_resolves(template: Json) -> None:
    for scope in _scopes(template):
        copies = {resource["copy"]["name"] for resource in scope.resources if "copy" in resource}
        for resource in scope.resources:
            for dependency in resource.get("dependsOn", []):
                if dependency in copies:
                    continue
                match = re.fullmatch(r"\[resourceId\((.*)\)\]", dependency)
                assert match, f"cannot resolve dependsOn {dependency}"
                resource_type, *name_segments = _split_arguments(match.group(1))
                targets = [candidate for candidate in scope.resources if f"'{candidate['type']}'" == resource_type]
                assert targets, f"{dependency}: no such resource type in this template"
                named = [target for target in targets if all(segment in target["name"] for segment in name_segments)]
                assert named, f"{dependency}: no resource of that type has this name"
                assert all(target is not resource for target in named), f"{resource['type']} depends on itself"


def test_every_app_setting_is_one_the_app_documents(template: Json) -> None:
    """A misspelt setting would be ignored silently: each one the template sets is in docs/settings.md."""
    documented = set(re.findall(r"^\| `([^`]+)`", (ROOT / "docs" / "settings.md").read_text(encoding="utf-8"), re.M))
    forms = {"AzureWebJobsStorage__accountName", "AzureWebJobsStorage__credential"}  # the host's own, in the AzureWebJobsStorage row
    assert set(_app_settings(template)) - documented - forms == set()


# --- sign-in for the pages (App Service Authentication, authsettingsV2): kept in one block ---

from shared.entrypoints.openapi import PAGES, ROUTES  # noqa: E402  (the routes the exclusions must cover, and must not)

EXPECTED_API_VERSIONS["Microsoft.Web/sites/config"] = "2024-04-01"
NAME_RULES["Microsoft.Web/sites/config"] = (14, 14, r"authsettingsV2")
CLIENT_ID, TENANT_ID = "33333333-3333-3333-3333-333333333333", "44444444-4444-4444-4444-444444444444"
WEBHOOK = "/runtime/webhooks/EventGrid"


def _auth_settings(template: Json, **overrides: Any) -> list[tuple[Environment, Json]]:
    return [(environment, resource) for environment, resource in _deployment(template, **overrides)
            if resource["type"] == "Microsoft.Web/sites/config" and environment.value(resource.get("condition", True))]


def _excluded(path: str, patterns: list[str]) -> bool:
    """Whether App Service Authentication lets `path` through unauthenticated: an exact path, or a prefix ending in /*."""
    return any(path.lower() == p.lower() or (p.endswith("/*") and path.lower().startswith(p[:-1].lower())) for p in patterns)


def check_sign_in(template: Json) -> None:
    """Off unless a client id is given; then sign-in with Entra ID for everything but the key-protected JSON API, the
    host's admin API and the Event Grid webhook, which stay reachable with their keys."""
    assert template["parameters"]["authClientId"]["defaultValue"] == ""
    assert _auth_settings(template) == [], "no client id: no App Service Authentication"
    ((environment, resource),) = _auth_settings(template, authClientId=CLIENT_ID, authTenantId=TENANT_ID)
    properties = environment.value(resource["properties"])
    assert environment.value(resource["name"]).endswith("/authsettingsV2") and properties["platform"]["enabled"] is True
    validation = properties["globalValidation"]
    assert validation["requireAuthentication"] is True and validation["unauthenticatedClientAction"] == "RedirectToLoginPage"
    excluded = validation["excludedPaths"]
    assert all(_excluded("/" + route.path.replace("{kind}", "user"), excluded) for route in ROUTES.values()), excluded
    assert _excluded(WEBHOOK, excluded) and _excluded("/admin/functions/reconcile", excluded)
    assert not any(_excluded("/" + page, excluded) for page in PAGES.values()), "a page is let through without sign-in"
    entra = properties["identityProviders"]["azureActiveDirectory"]
    assert entra["enabled"] is True and entra["registration"]["clientId"] == CLIENT_ID
    assert entra["registration"]["openIdIssuer"] == f"https://login.microsoftonline.com/{TENANT_ID}/v2.0"
    assert f"api://{CLIENT_ID}" in entra["validation"]["allowedAudiences"] and properties["httpSettings"]["requireHttps"] is True


def _auth(template: Json) -> Json:
    return _resource(template, "Microsoft.Web/sites/config")


SIGN_IN_MUTATIONS: list[tuple[str, Callable[[Json], None]]] = [
    ("always on", edit(_auth, "condition", ...)),
    ("anonymous callers let in", edit(lambda t: _auth(t)["properties"]["globalValidation"], "unauthenticatedClientAction", "AllowAnonymous")),
    ("pages let through", edit(lambda t: _auth(t)["properties"]["globalValidation"], "excludedPaths", ["/*"])),
    ("the webhook sent to sign-in", edit(lambda t: _auth(t)["properties"]["globalValidation"], "excludedPaths", ["/api/*", "/admin/*"])),
    ("the API sent to sign-in", edit(lambda t: _auth(t)["properties"]["globalValidation"], "excludedPaths", ["/api/health", WEBHOOK, "/admin/*"])),
    ("another tenant", edit(lambda t: _auth(t)["properties"]["identityProviders"]["azureActiveDirectory"]["registration"], "openIdIssuer",
                             "https://login.microsoftonline.com/common/v2.0")),
]
HARDENING_CHECKS.append(check_sign_in)
MUTATIONS.extend((name, mutate, check_sign_in) for name, mutate in SIGN_IN_MUTATIONS)


def test_the_template_keeps_sign_in_as_described(template: Json) -> None:
    check_sign_in(template)


@pytest.mark.parametrize("mutate", [pytest.param(mutate, id=name) for name, mutate in SIGN_IN_MUTATIONS])
def test_the_sign_in_rule_catches_a_broken_copy(template: Json, mutate: Callable[[Json], None]) -> None:
    broken = copy.deepcopy(template)
    mutate(broken)
    assert broken != template
    with pytest.raises(AssertionError):
        check_sign_in(broken)
