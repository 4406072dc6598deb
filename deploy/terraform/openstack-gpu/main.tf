# openstack-gpu: GPU instances on an OpenStack research cloud that join the cluster with
# kubeadm, one per key of var.burstd_units (burstd's module contract: docs/terraform.md).
#
# NOT VALIDATED HERE: burstd's tests cannot download the OpenStack provider, so this module is
# checked with `terraform fmt` only. Try it with `terraform init && terraform plan` against
# your cloud before pointing burstd at it.
#
# Each instance boots an image with the NVIDIA driver, containerd and kubeadm installed (as
# research clouds' GPU images usually are), runs `kubeadm join` from cloud-init, and registers
# with the GPU taint. Its Node then gets the unit's labels from outside (a kubelet may not set
# labels under kubernetes.io, and burstd's app.kubernetes.io/managed-by is one), by kubectl
# with var.kubeconfig. The NVIDIA device plugin (or GPU operator) already in the cluster makes
# nvidia.com/gpu allocatable; burstd waits for that before it calls the unit ready.

terraform {
  required_version = ">= 1.6"
  required_providers {
    openstack = {
      source  = "terraform-provider-openstack/openstack"
      version = "~> 3.0"
    }
  }
}

# Credentials come from the environment (OS_CLOUD with clouds.yaml, or OS_AUTH_URL,
# OS_APPLICATION_CREDENTIAL_ID and OS_APPLICATION_CREDENTIAL_SECRET): give burstd the file
# with env_files, never as a variable.
provider "openstack" {
  region = var.region
}

locals {
  # Labels a kubelet may set on its own Node; the rest are set by kubectl below.
  restricted = "kubernetes.io/"
  kubelet_labels = {
    for key, unit in var.burstd_units : key => join(",", [
      for name, value in unit.labels : "${name}=${value}"
      if !strcontains(name, local.restricted)
    ])
  }
  taints = join(",", [for t in var.taints : "${t.key}=${t.value}:${t.effect}"])
}

resource "openstack_compute_instance_v2" "gpu" {
  for_each = var.burstd_units

  name            = "${var.name_prefix}${each.key}"
  flavor_name     = var.flavor
  image_name      = var.image
  key_pair        = var.key_pair
  security_groups = var.security_groups

  network {
    name = var.network
  }

  metadata = {
    "burstd-unit" = each.key
  }

  user_data = templatefile("${path.module}/cloud-init.yaml.tftpl", {
    hostname        = "${var.name_prefix}${each.key}"
    join_endpoint   = var.join_endpoint
    join_token      = var.join_token
    ca_cert_hash    = var.ca_cert_hash
    node_labels     = local.kubelet_labels[each.key]
    register_taints = local.taints
  })
}

# The unit's labels, burstd's ownership labels among them, once the Node has registered.
resource "terraform_data" "labels" {
  for_each = var.burstd_units

  triggers_replace = [openstack_compute_instance_v2.gpu[each.key].id]

  provisioner "local-exec" {
    command     = "kubectl --kubeconfig \"$KUBECONFIG_PATH\" wait --for=create --timeout=${var.join_timeout} node/$NODE && kubectl --kubeconfig \"$KUBECONFIG_PATH\" label --overwrite node/$NODE $LABELS"
    interpreter = ["/bin/sh", "-c"]
    environment = {
      KUBECONFIG_PATH = var.kubeconfig
      NODE            = openstack_compute_instance_v2.gpu[each.key].name
      LABELS          = join(" ", [for name, value in each.value.labels : "${name}=${value}"])
    }
  }
}
