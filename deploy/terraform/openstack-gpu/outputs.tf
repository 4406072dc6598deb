output "nodes" {
  description = "unit id => the name of the unit's Node (the instance's hostname)."
  value       = { for key, instance in openstack_compute_instance_v2.gpu : key => instance.name }
}
