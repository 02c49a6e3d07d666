# Provider credentials are NOT variables: the genesyscloud provider reads
# GENESYSCLOUD_OAUTHCLIENT_ID, GENESYSCLOUD_OAUTHCLIENT_SECRET and
# GENESYSCLOUD_REGION from the environment, which keeps them out of state
# and out of *.tfvars files.

variable "datatable_name" {
  description = "Name of the Architect data table the daemon writes to; must match [table] name in the daemon's config."
  type        = string
  default     = "QueueAgentCounts"
}

variable "datatable_division_id" {
  description = "Division for the data table; null means the home division. Flows can only look up tables in divisions they can see."
  type        = string
  default     = null
}

variable "create_oauth_client" {
  description = "Also create a least-privilege role and Client Credentials OAuth client for the daemon. Needs the Terraform client to hold that role itself."
  type        = bool
  default     = false
}

variable "oauth_grant_division_id" {
  description = "Division the daemon's role is granted in: null for the home division, \"*\" for all. Queues outside the granted divisions are invisible to the daemon."
  type        = string
  default     = null
}
