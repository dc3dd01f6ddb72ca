import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from runner.models import Agent, Alert, AuditEvent, CycleRun, WorkerHeartbeat


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    is_staff = True

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or "secret-pass-123")
        if create:
            self.save()

    @factory.post_generation
    def perms(self, create, extracted, **kwargs):
        """UserFactory(perms=["runner.view_agent", "runner.control_agent"])"""
        for dotted in extracted or []:
            app_label, codename = dotted.split(".")
            self.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    slug = factory.Sequence(lambda n: f"agent-{n}")
    name = factory.LazyAttribute(lambda o: f"Agent {o.slug}")
    kind = "test-ok"
    parameters = factory.LazyFunction(dict)


class CycleRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CycleRun

    agent = factory.SubFactory(AgentFactory)
    trigger = "schedule"
    status = "succeeded"
    queued_at = factory.LazyFunction(timezone.now)
    started_at = factory.LazyAttribute(lambda o: o.queued_at)
    finished_at = factory.LazyAttribute(lambda o: o.started_at)
    duration_ms = 0


class AuditEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditEvent

    agent = factory.SubFactory(AgentFactory)
    agent_slug = factory.LazyAttribute(lambda o: o.agent.slug)
    action = "start"
    outcome = "applied"
    source = "api"
    created_at = factory.LazyFunction(timezone.now)


class WorkerHeartbeatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkerHeartbeat

    worker = factory.Sequence(lambda n: f"host:{1000 + n}")
    cluster = "agent-runner"
    seen_at = factory.LazyFunction(timezone.now)


class AlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Alert

    kind = "agent_error"
    agent = factory.SubFactory(AgentFactory)
    agent_slug = factory.LazyAttribute(lambda o: o.agent.slug)
    fingerprint = factory.LazyAttribute(lambda o: f"{o.kind}:agent:{o.agent.pk}")
    subject = factory.LazyAttribute(lambda o: f"Agent {o.agent.slug} tripped to error")
    message = "test alert"
    opened_at = factory.LazyFunction(timezone.now)
    last_seen_at = factory.LazyAttribute(lambda o: o.opened_at)
