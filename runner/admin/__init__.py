"""The admin as the control room, one module per ModelAdmin (importing them registers them).

agents          AgentAdmin: list, configuration form, the agent page, audited writes
agent_controls  the control buttons and bulk actions (one service call each)
agent_page      the agent page's runner panel, recent runs and events
agent_form      the configuration form
agent_list      the agents list's last outcome and success rate (one query per page)
runs            CycleRunAdmin (read-only)
events          AuditEventAdmin (read-only)
display         badges, moments, changes and JSON as HTML
base            read-only ModelAdmin base and links to a record's related rows
pagination      counting and date drill-down on big tables without a scan
"""

from runner.admin import agents, events, runs  # noqa: F401
