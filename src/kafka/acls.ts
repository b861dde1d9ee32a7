import {
  AclOperations,
  type AclOperationValue,
  AclPermissionTypes,
  type Admin,
  ResourcePatternTypes,
  ResourceTypes,
} from '@platformatic/kafka'

export interface AclScope {
  /** the station topics' prefix (`topicPrefix`) */
  topicPrefix: string
  /** the ETL's consumer groups' prefix (`etlGroupId`: also `-run-<uuid>` and `-watchdog`) */
  etlGroupId: string
}

type Grant = [principal: string, resource: 'topic' | 'group', prefix: string, operation: AclOperationValue]

/**
 * What each component may do, and nothing more (docs/security.md, "Kafka"): `simulator` writes
 * and describes the station topics, and so does `ingest` (what devices send); `etl` reads and describes them and uses the consumer groups
 * that start with its group id (its followers', its bounded runs', its watchdog's). `admin` is a
 * super user and needs none. Prefixed patterns, so a new station's topic is covered.
 */
export function componentGrants(scope: AclScope): Grant[] {
  const { topicPrefix: topics, etlGroupId: groups } = scope
  return [
    ['User:simulator', 'topic', topics, AclOperations.WRITE],
    ['User:simulator', 'topic', topics, AclOperations.DESCRIBE],
    ['User:ingest', 'topic', topics, AclOperations.WRITE],
    ['User:ingest', 'topic', topics, AclOperations.DESCRIBE],
    ['User:etl', 'topic', topics, AclOperations.READ],
    ['User:etl', 'topic', topics, AclOperations.DESCRIBE],
    ['User:etl', 'group', groups, AclOperations.READ],
  ]
}

/** Creates the components' ACLs; creating one that exists changes nothing, so it runs at every start. */
export async function grantComponentAcls(admin: Admin, scope: AclScope): Promise<void> {
  await admin.createAcls({
    creations: componentGrants(scope).map(([principal, resource, prefix, operation]) => ({
      principal,
      host: '*',
      resourceType: resource === 'topic' ? ResourceTypes.TOPIC : ResourceTypes.GROUP,
      // An empty topic prefix (allowed) means every topic: Kafka names none "", so the wildcard.
      resourceName: prefix || '*',
      resourcePatternType: prefix ? ResourcePatternTypes.PREFIXED : ResourcePatternTypes.LITERAL,
      operation,
      permissionType: AclPermissionTypes.ALLOW,
    })),
  })
}
