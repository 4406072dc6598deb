variable "burstd_units" {
  description = "The units burstd wants: unit id => what the unit's node carries."
  type = map(object({
    gpus      = number
    gpu_model = optional(string, "")
    mig       = optional(map(number), {})
    labels    = optional(map(string), {})
  }))
}

variable "kubectl" {
  description = "The kubectl command (a path, or a command such as 'scripts/kube-testenv kubectl')."
  type        = string
  default     = "kubectl"
}

variable "kubeconfig" {
  description = "Kubeconfig of the cluster the nodes join (empty: kubectl's own default)."
  type        = string
  default     = ""
}

variable "name_prefix" {
  description = "Node names are <name_prefix><unit id>."
  type        = string
  default     = "tf-"
}

variable "labels" {
  description = "More labels on every node (the unit's own labels win)."
  type        = map(string)
  default     = {}
}

variable "annotations" {
  description = "More annotations on every node."
  type        = map(string)
  default     = {}
}

variable "taints" {
  description = "Taints of every node."
  type        = list(object({ key = string, value = optional(string, ""), effect = string }))
  default     = []
}

variable "capacity" {
  description = "Capacity (and allocatable) of every node besides its GPUs."
  type        = map(string)
  default     = { cpu = "32", memory = "256Gi", pods = "110", "ephemeral-storage" = "100Gi" }
}

variable "ready_delay" {
  description = "How long after creation kwok marks a node Ready (kwok's node-initialize delay)."
  type        = string
  default     = "200ms"
}

variable "advertise_gpus" {
  description = "false: nodes come up Ready with no GPU resource (a device plugin that never starts)."
  type        = bool
  default     = true
}

variable "create_delay" {
  description = "Seconds each create waits before making its node (a slow cloud API)."
  type        = number
  default     = 0
}

variable "fail_with" {
  description = "Non-empty: every create fails with this message (a quota or API error)."
  type        = string
  default     = ""
}
