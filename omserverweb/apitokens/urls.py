from django.urls import path

from omserverweb.apitokens import views

app_name = "apitokens"

urlpatterns = [
    path("", views.token_list, name="tokens"),
    path("<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
]
