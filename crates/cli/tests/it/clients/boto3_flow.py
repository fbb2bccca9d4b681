"""Drives `agentry serve` with boto3 as a Step Functions user would. Prints one JSON line."""
import json
import sys
import time

import boto3
from botocore.config import Config

endpoint, access_key, secret_key = sys.argv[1:4]
sfn = boto3.client(
    "stepfunctions",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id=access_key,
    aws_secret_access_key=secret_key,
    config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
)
out = {}
definition = {
    "StartAt": "Greet",
    "States": {
        "Greet": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('Hello, {}!', $.name)"}, "Next": "Check"},
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.greeting", "StringMatches": "Hello*", "Next": "Done"}], "Default": "Fail"},
        "Fail": {"Type": "Fail", "Error": "Unexpected"},
        "Done": {"Type": "Succeed"},
    },
}
arn = sfn.create_state_machine(name="greeter", definition=json.dumps(definition), roleArn="arn:aws:iam::000000000000:role/agentry")["stateMachineArn"]
ex = sfn.start_execution(stateMachineArn=arn, name="first", input=json.dumps({"name": "boto3"}))["executionArn"]
for _ in range(200):
    d = sfn.describe_execution(executionArn=ex)
    if d["status"] != "RUNNING":
        break
    time.sleep(0.05)
out["status"] = d["status"]
out["output"] = json.loads(d["output"])
out["history"] = [e["type"] for e in sfn.get_execution_history(executionArn=ex)["events"]]
out["listed"] = [e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]]
express = sfn.create_state_machine(name="quick", type="EXPRESS", definition=json.dumps(definition), roleArn="arn:aws:iam::000000000000:role/agentry")["stateMachineArn"]
sync = sfn.start_sync_execution(stateMachineArn=express, input=json.dumps({"name": "sync"}))
out["machines"] = sorted(m["name"] for m in sfn.list_state_machines()["stateMachines"])
out["sync"] = {"status": sync["status"], "output": json.loads(sync["output"]), "express": ":express:" in sync["executionArn"]}
errors = {}
try:
    sfn.start_sync_execution(stateMachineArn=arn, input="{}")
except sfn.exceptions.StateMachineTypeNotSupported:
    errors["sync on standard"] = "StateMachineTypeNotSupported"
try:
    sfn.describe_execution(executionArn=arn.replace(":stateMachine:", ":execution:") + ":missing")
except sfn.exceptions.ExecutionDoesNotExist:
    errors["missing execution"] = "ExecutionDoesNotExist"
try:
    sfn.create_state_machine(name="broken", definition='{"StartAt": "Nowhere", "States": {}}', roleArn="arn:aws:iam::000000000000:role/agentry")
except sfn.exceptions.InvalidDefinition as e:
    errors["bad definition"] = "InvalidDefinition"
try:
    sfn.start_execution(stateMachineArn=arn, name="first", input="{}")
except sfn.exceptions.ExecutionAlreadyExists:
    errors["name reused"] = "ExecutionAlreadyExists"
try:
    sfn.start_execution(stateMachineArn=arn, input="not json")
except sfn.exceptions.InvalidExecutionInput:
    errors["bad input"] = "InvalidExecutionInput"
wrong = boto3.client(
    "stepfunctions",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id=access_key,
    aws_secret_access_key="not-the-secret",
    config=Config(retries={"max_attempts": 1}),
)
try:
    wrong.list_state_machines()
except wrong.exceptions.ClientError as e:
    errors["wrong secret"] = e.response["Error"]["Code"]
out["errors"] = errors
test = sfn.test_state(definition=json.dumps({"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.r", "Next": "N"}), roleArn="arn:aws:iam::000000000000:role/agentry", input='{"a": 1}')
out["test_state"] = {"status": test["status"], "output": json.loads(test["output"]), "nextState": test["nextState"]}

role = "arn:aws:iam::000000000000:role/agentry"


def wait_for(ex):
    for _ in range(200):
        d = sfn.describe_execution(executionArn=ex)
        if d["status"] != "RUNNING":
            return d
        time.sleep(0.05)
    return d


# An activity worker, and a redrive: the worker fails the first attempt, the execution is
# redriven from the failed state, and the worker's second answer succeeds.
activity = sfn.create_activity(name="reviewer")["activityArn"]
review = {"StartAt": "Prepare", "States": {
    "Prepare": {"Type": "Pass", "Result": "ready", "ResultPath": "$.prepared", "Next": "Review"},
    "Review": {"Type": "Task", "Resource": activity,
               "Parameters": {"doc.$": "$.doc", "attempt.$": "$$.Execution.RedriveCount"}, "End": True}}}
reviewed = sfn.create_state_machine(name="reviewed", definition=json.dumps(review), roleArn=role)["stateMachineArn"]
ex = sfn.start_execution(stateMachineArn=reviewed, input=json.dumps({"doc": "draft"}))["executionArn"]
task = sfn.get_activity_task(activityArn=activity, workerName="boto3-worker")
first_input = json.loads(task["input"])
sfn.send_task_failure(taskToken=task["taskToken"], error="Review.Rejected", cause="try again")
failed = wait_for(ex)
redriven = sfn.redrive_execution(executionArn=ex)
task = sfn.get_activity_task(activityArn=activity, workerName="boto3-worker")
second_input = json.loads(task["input"])
sfn.send_task_success(taskToken=task["taskToken"], output=json.dumps({"approved": True}))
done = wait_for(ex)
history = [e["type"] for e in sfn.get_execution_history(executionArn=ex, maxResults=100)["events"]]
out["activity_redrive"] = {
    "first": first_input, "second": second_input,
    "failed": [failed["status"], failed.get("redriveStatus")],
    "redrive_date": "redriveDate" in redriven,
    "done": [done["status"], json.loads(done["output"]), done["redriveCount"]],
    "redriven_events": history.count("ExecutionRedriven"),
    "activity_events": sorted(set(e for e in history if e.startswith("Activity"))),
    "activities": [a["name"] for a in sfn.list_activities()["activities"]],
}
try:
    sfn.redrive_execution(executionArn=ex)
except sfn.exceptions.ExecutionNotRedrivable:
    errors["redrive succeeded"] = "ExecutionNotRedrivable"
sfn.delete_activity(activityArn=activity)
try:
    sfn.describe_activity(activityArn=activity)
except sfn.exceptions.ActivityDoesNotExist:
    errors["deleted activity"] = "ActivityDoesNotExist"

# An alias routing to a published version.
v1 = sfn.create_state_machine(name="aliased", definition=json.dumps(definition), roleArn=role, publish=True)["stateMachineVersionArn"]
alias = sfn.create_state_machine_alias(name="live", routingConfiguration=[{"stateMachineVersionArn": v1, "weight": 100}])["stateMachineAliasArn"]
ex = sfn.start_execution(stateMachineArn=alias, input=json.dumps({"name": "alias"}))["executionArn"]
d = wait_for(ex)
described = sfn.describe_state_machine_alias(stateMachineAliasArn=alias)
out["alias"] = {
    "arn_suffix": alias.rsplit(":", 2)[-2:],
    "status": d["status"], "output": json.loads(d["output"]),
    "via": [d.get("stateMachineAliasArn") == alias, d.get("stateMachineVersionArn") == v1],
    "routing": [[r["stateMachineVersionArn"] == v1, r["weight"]] for r in described["routingConfiguration"]],
    "listed": len(sfn.list_state_machine_aliases(stateMachineArn=v1.rsplit(":", 1)[0])["stateMachineAliases"]),
}
try:
    sfn.delete_state_machine_version(stateMachineVersionArn=v1)
except sfn.exceptions.ConflictException:
    errors["version in use"] = "ConflictException"
sfn.delete_state_machine_alias(stateMachineAliasArn=alias)
try:
    sfn.describe_state_machine_alias(stateMachineAliasArn=alias)
except sfn.exceptions.ResourceNotFound:
    errors["deleted alias"] = "ResourceNotFound"

# DeleteStateMachine: gone, with its versions.
aliased = v1.rsplit(":", 1)[0]
sfn.delete_state_machine(stateMachineArn=aliased)
try:
    sfn.describe_state_machine(stateMachineArn=aliased)
except sfn.exceptions.StateMachineDoesNotExist:
    errors["deleted machine"] = "StateMachineDoesNotExist"
try:
    sfn.describe_state_machine(stateMachineArn=v1)
except sfn.exceptions.StateMachineDoesNotExist:
    errors["deleted version"] = "StateMachineDoesNotExist"
print(json.dumps(out))
