# CX as Code: the Architect data table genesys-queue-sync writes into, and
# optionally the OAuth client it logs in with.
#
#   export GENESYSCLOUD_OAUTHCLIENT_ID=... GENESYSCLOUD_OAUTHCLIENT_SECRET=...
#   export GENESYSCLOUD_REGION=us-east-1
#   terraform init && terraform apply

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    genesyscloud = {
      source  = "mypurecloud/genesyscloud"
      version = "~> 1.60"
    }
  }
}

provider "genesyscloud" {}

# One row per queue, keyed by queue name (or id: see [table] key in the
# daemon's config). Property names are what the daemon writes and what flows
# read, so they must not be renamed; titles are display only.
# Properties cannot be removed once created, only added.
resource "genesyscloud_architect_datatable" "queue_agent_counts" {
  name        = var.datatable_name
  division_id = var.datatable_division_id
  description = "Agent counts per queue, kept fresh by genesys-queue-sync. Rows with UpdatedAt older than 10 minutes are stale (twice rows.refresh_after; genesys-queue-sync check prints it)."

  properties {
    name  = "key"
    type  = "string"
    title = "Queue"
  }
  properties {
    name    = "Online"
    type    = "integer"
    title   = "Online"
    default = "0"
  }
  properties {
    name    = "OnQueue"
    type    = "integer"
    title   = "OnQueue"
    default = "0"
  }
  properties {
    name    = "Idle"
    type    = "integer"
    title   = "Idle"
    default = "0"
  }
  properties {
    name    = "Interacting"
    type    = "integer"
    title   = "Interacting"
    default = "0"
  }
  properties {
    name    = "Waiting"
    type    = "integer"
    title   = "Waiting"
    default = "0"
  }
  # ISO-8601 UTC timestamp of the observation; a string because data tables
  # have no datetime type. Flows parse it with ToDateTime().
  properties {
    name  = "UpdatedAt"
    type  = "string"
    title = "UpdatedAt"
  }
}

# --- Optional: least-privilege identity for the daemon ----------------------

data "genesyscloud_auth_division_home" "home" {
  count = var.create_oauth_client ? 1 : 0
}

resource "genesyscloud_auth_role" "queue_sync" {
  count       = var.create_oauth_client ? 1 : 0
  name        = "genesys-queue-sync"
  description = "Read queue observations, write rows of the QueueAgentCounts data table."

  permission_policies {
    domain      = "analytics"
    entity_name = "queueObservation"
    action_set  = ["view"]
  }
  permission_policies {
    domain      = "routing"
    entity_name = "queue"
    action_set  = ["view"]
  }
  permission_policies {
    domain      = "architect"
    entity_name = "datatable"
    action_set  = ["view"]
  }
  permission_policies {
    domain      = "architect"
    entity_name = "datatableRow"
    action_set  = ["view", "add", "edit"]
  }
}

resource "genesyscloud_oauth_client" "queue_sync" {
  count                         = var.create_oauth_client ? 1 : 0
  name                          = "genesys-queue-sync"
  description                   = "Client Credentials for the genesys-queue-sync daemon."
  authorized_grant_type         = "CLIENT-CREDENTIALS"
  access_token_validity_seconds = 86400
  # The secret is NOT exposed into Terraform state; copy it from
  # Admin > Integrations > OAuth into the daemon's secret store.
  expose_client_secret = false

  roles {
    role_id     = genesyscloud_auth_role.queue_sync[0].id
    division_id = coalesce(var.oauth_grant_division_id, data.genesyscloud_auth_division_home.home[0].id)
  }
}

output "datatable_id" {
  description = "Set as [table] id in the daemon's config to avoid a name lookup."
  value       = genesyscloud_architect_datatable.queue_agent_counts.id
}

output "oauth_client_id" {
  description = "GENESYSCLOUD_OAUTHCLIENT_ID / [genesys] client_id for the daemon (null unless create_oauth_client)."
  value       = var.create_oauth_client ? genesyscloud_oauth_client.queue_sync[0].id : null
}
