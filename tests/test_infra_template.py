"""The ARM template in infra/: the event subscription, the resource types and API versions, the roles, no keys in app settings."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.domain.event_types import ALIASES, CANONICAL_TYPES

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
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "API Management Service Reader Role": "71522526-b88f-4d52-b57f-d31fc3546d0d",
    "EventGrid Data Sender": "d5a91429-5739-47e2-a06b-3470a27159e7",
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
    "Microsoft.Authorization/roleAssignments": "2022-04-01",
    "Microsoft.Resources/deployments": "2022-09-01",
}

FORBIDDEN_IN_SETTING_VALUES = ("AccountKey=", "SharedAccessSignature", "listKeys(", "listkeys", "SharedAccessKey", "DefaultEndpointsProtocol")
# Flex Consumption takes these from functionAppConfig or has no use for them.
FLEX_DEPRECATED_SETTINGS = ("FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE",
                            "WEBSITE_CONTENTSHARE", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "SCM_DO_BUILD_DURING_DEPLOYMENT")
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
        assert scope.template["$schema"].endswith("/deploymentTemplate.json#")
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
        assert set(instance) <= {"resourceId", "location", "existingSystemTopicName"}
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
    dead_letter_roles = [resource for _, resource, role in _role_assignments(template) if role == "Storage Blob Data Contributor"]
    assert len(dead_letter_roles) == 1
    assert "systemTopicPrincipalId" in dead_letter_roles[0]["properties"]["principalId"]


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
    assert len(deployments) == 2
    for deployment in deployments:
        assert deployment["copy"]["count"] == "[length(variables('instances'))]"
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
    assert config["runtime"] == {"name": "python", "version": "3.11"}
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
    site_principal = "reference(resourceId('Microsoft.Web/sites', parameters('functionAppName')), '2024-04-01', 'Full').identity.principalId"

    def granted(role: str) -> list[tuple[Scope, Json]]:
        return [(scope, resource) for scope, resource, name in assignments if name == role]

    for role in ("Storage Table Data Contributor", "Storage Blob Data Owner", "Storage Queue Data Contributor"):
        to_app = [resource for scope, resource in granted(role) if scope.holder is None and site_principal in resource["properties"]["principalId"]]
        assert len(to_app) == 1, role
        assert to_app[0]["scope"] == "[format('Microsoft.Storage/storageAccounts/{0}', parameters('storageAccountName'))]"

    readers = granted("API Management Service Reader Role")
    assert len(readers) == 1
    scope, reader = readers[0]
    assert scope.holder is not None and scope.holder["copy"]["name"] == "apimSetup", "the reader role is given per APIM instance"
    assert reader["scope"] == "[format('Microsoft.ApiManagement/service/{0}', parameters('apimName'))]"
    assert scope.resolve(reader["properties"]["principalId"]) == f"[{site_principal}]"

    senders = granted("EventGrid Data Sender")
    assert len(senders) == 1
    _, sender = senders[0]
    assert sender["condition"] == "[parameters('deployAlertsTopic')]"
    assert sender["scope"].startswith("[format('Microsoft.EventGrid/topics/{0}'")
    assert site_principal in sender["properties"]["principalId"]


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
