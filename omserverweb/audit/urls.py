from django.urls import path

from omserverweb.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.index, name="index"),
    path("live/", views.live, name="live"),
    path("export.csv", views.export_csv, name="export"),
    path("verify/", views.verify, name="verify"),
    path("rules/", views.rule_list, name="rules"),
    path("rules/add/", views.rule_edit, name="rule-add"),
    path("rules/<int:pk>/edit/", views.rule_edit, name="rule-edit"),
    path("rules/<int:pk>/delete/", views.rule_delete, name="rule-delete"),
    path("tokens/", views.token_list, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
]
