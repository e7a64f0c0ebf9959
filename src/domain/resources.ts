/**
 * The words of roles: access levels and StackRox's resources, so that roles
 * written for Central mean the same here. The gateway itself only enforces
 * `Access` (docs/reference.md §2); downstream services read the `roles` claim.
 * Plain constants, shared with the console (console/src), which bundles them.
 */
export const ACCESS_LEVELS = ['NO_ACCESS', 'READ_ACCESS', 'READ_WRITE_ACCESS'] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];

export const RESOURCES = [
  'Access',
  'Administration',
  'Alert',
  'CVE',
  'Cluster',
  'Compliance',
  'Deployment',
  'DeploymentExtension',
  'Detection',
  'Image',
  'Integration',
  'K8sRole',
  'K8sRoleBinding',
  'K8sSubject',
  'Namespace',
  'NetworkGraph',
  'NetworkPolicy',
  'Node',
  'Secret',
  'ServiceAccount',
  'VulnerabilityManagementApprovals',
  'VulnerabilityManagementRequests',
  'WatchedImage',
  'WorkflowAdministration',
] as const;
