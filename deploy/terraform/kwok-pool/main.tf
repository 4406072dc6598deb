# kwok-pool: burstd's rehearsal module. Each unit (one key of var.burstd_units) is a kwok-managed
# fake GPU Node, created and deleted with kubectl by local-exec provisioners on a built-in
# terraform_data resource: real terraform, real state, a real API server, no cloud and no
# provider download. See docs/terraform.md for the contract every burstd module keeps.

terraform {
  required_version = ">= 1.6"
}

locals {
  kubectl = var.kubeconfig == "" ? var.kubectl : "${var.kubectl} --kubeconfig ${var.kubeconfig}"

  manifests = {
    for key, unit in var.burstd_units : key => {
      apiVersion = "v1"
      kind       = "Node"
      metadata = {
        name = "${var.name_prefix}${key}"
        labels = merge(var.labels, unit.labels, {
          type                     = "kwok"
          "kubernetes.io/hostname" = "${var.name_prefix}${key}"
          }, unit.gpu_model == "" ? {} : {
          "nvidia.com/gpu.product" = unit.gpu_model
        })
        annotations = merge(var.annotations, {
          "kwok.x-k8s.io/node"                        = "fake"
          "node-initialize.stage.kwok.x-k8s.io/delay" = var.ready_delay
        })
      }
      spec = length(var.taints) == 0 ? {} : { taints = var.taints }
      status = {
        # Not Ready until kwok (playing the kubelet) says so.
        conditions = [{
          type    = "Ready"
          status  = "False"
          reason  = "KubeletNotReady"
          message = "created by terraform, waiting for the kubelet"
        }]
        capacity    = merge(var.capacity, local.gpus[key])
        allocatable = merge(var.capacity, local.gpus[key])
      }
    }
  }

  # No GPU resources at all when advertise_gpus is false: a node whose device plugin never
  # comes up.
  gpus = {
    for key, unit in var.burstd_units : key => !var.advertise_gpus ? {} : (
      length(unit.mig) > 0
      ? { for profile, n in unit.mig : "nvidia.com/mig-${profile}" => tostring(n) }
      : { "nvidia.com/gpu" = tostring(unit.gpus) }
    )
  }
}

resource "terraform_data" "node" {
  for_each = var.burstd_units

  # Only the node's name and how to reach the cluster: a destroy-time provisioner may read
  # nothing but self.
  input = {
    name    = "${var.name_prefix}${each.key}"
    kubectl = local.kubectl
  }

  provisioner "local-exec" {
    # apply, not create: after a crash the node may exist while the state does not know it,
    # and the next apply must adopt it rather than fail or make a second one.
    command     = "sleep ${var.create_delay}; if [ -n \"$FAIL_WITH\" ]; then echo \"$FAIL_WITH\" >&2; exit 1; fi; printf '%s' \"$MANIFEST\" | ${local.kubectl} apply -f - >/dev/null"
    interpreter = ["/bin/sh", "-c"]
    environment = {
      MANIFEST  = jsonencode(local.manifests[each.key])
      FAIL_WITH = var.fail_with
    }
  }

  provisioner "local-exec" {
    when        = destroy
    command     = "${self.input.kubectl} delete node ${self.input.name} --ignore-not-found --wait=false >/dev/null"
    interpreter = ["/bin/sh", "-c"]
  }
}
