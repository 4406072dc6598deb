variable "burstd_units" {
  description = "The units burstd wants: unit id => what the unit's node carries."
  type = map(object({
    gpus      = number
    gpu_model = optional(string, "")
    mig       = optional(map(number), {})
    labels    = optional(map(string), {})
  }))
}

variable "region" {
  description = "OpenStack region."
  type        = string
}

variable "flavor" {
  description = "A GPU flavor whose GPU count matches the target's gpus_per_unit."
  type        = string
}

variable "image" {
  description = "An image with the NVIDIA driver, containerd and kubeadm."
  type        = string
}

variable "network" {
  description = "The tenant network the cluster's API server is reachable from."
  type        = string
}

variable "key_pair" {
  description = "SSH key pair for the operators (optional)."
  type        = string
  default     = null
}

variable "security_groups" {
  description = "Security groups of the instances."
  type        = list(string)
  default     = ["default"]
}

variable "name_prefix" {
  description = "Instance and node names are <name_prefix><unit id>."
  type        = string
  default     = "burst-"
}

variable "join_endpoint" {
  description = "host:port of the cluster's API server, for kubeadm join."
  type        = string
}

variable "join_token" {
  description = "A kubeadm bootstrap token (pass it as TF_VAR_join_token from an env file)."
  type        = string
  sensitive   = true
}

variable "ca_cert_hash" {
  description = "sha256:<hash> of the cluster CA, for kubeadm join."
  type        = string
}

variable "kubeconfig" {
  description = "Kubeconfig that may label Nodes (the labels step runs kubectl with it)."
  type        = string
}

variable "join_timeout" {
  description = "How long the labels step waits for the Node to register."
  type        = string
  default     = "15m"
}

variable "taints" {
  description = "Taints the node registers with (GPU nodes usually take only GPU pods)."
  type        = list(object({ key = string, value = string, effect = string }))
  default     = [{ key = "nvidia.com/gpu", value = "true", effect = "NoSchedule" }]
}
