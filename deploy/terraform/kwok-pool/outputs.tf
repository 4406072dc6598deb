output "nodes" {
  description = "unit id => the name of the unit's Node."
  value       = { for key, node in terraform_data.node : key => node.input.name }
}
