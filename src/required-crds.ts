// Which CustomResourceDefinitions each controller cannot work without, and
// the message that names a missing one. Pure: the manager asks the API
// server's discovery and passes what it found here.

import {
  AppResource,
  ImagePullSecretPolicyResource,
  PackageInstallResource,
  PackageMetadataResource,
  PackageRepositoryResource,
  PackageResource,
  RegistryTokenResource,
  SecretExportResource,
  SecretImportResource,
} from '../generated/index.js';
import type { ControllerName } from './config.js';

export interface ApiResource {
  group: string;
  version: string;
  plural: string;
}

/** Every resource a controller lists, watches or writes, beyond the built-in kinds. */
export const CONTROLLER_CRDS: Record<ControllerName, readonly ApiResource[]> = {
  secretexport: [SecretExportResource],
  secretimport: [SecretImportResource, SecretExportResource],
  placeholder: [SecretExportResource],
  packagerepository: [PackageRepositoryResource, PackageResource, PackageMetadataResource],
  packageinstall: [PackageInstallResource, PackageResource, AppResource],
  app: [AppResource],
  imagepullsecretpolicy: [ImagePullSecretPolicyResource],
  registrytoken: [RegistryTokenResource],
};

export interface RequiredCrd {
  resource: ApiResource;
  /** `plural.group`, the CRD's metadata.name. */
  name: string;
  /** The selected controllers that need it, in --controllers order. */
  controllers: ControllerName[];
  /** Needed by something other than a controller (e.g. the Pod webhook): its name and how to turn it off. */
  neededBy?: { what: string; disable: string };
}

export const crdName = (r: ApiResource): string => `${r.plural}.${r.group}`;

/** The CRDs the selected controllers need, each once, in the order first needed. */
export function requiredCrds(controllers: readonly ControllerName[]): RequiredCrd[] {
  const byName = new Map<string, RequiredCrd>();
  for (const controller of controllers) {
    for (const resource of CONTROLLER_CRDS[controller]) {
      const name = crdName(resource);
      const entry = byName.get(name) ?? { resource, name, controllers: [] };
      if (!entry.controllers.includes(controller)) entry.controllers.push(controller);
      byName.set(name, entry);
    }
  }
  return [...byName.values()];
}

const quotedList = (names: readonly string[]) => names.map((n) => `"${n}"`).join(', ');

/** Why start fails: the CRD, the controllers that need it, and the two ways out. */
export function missingCrdMessage(crd: RequiredCrd): string {
  if (crd.neededBy && crd.controllers.length === 0) {
    return `CRD ${crd.name} is not installed (needed by ${crd.neededBy.what}); install crds/ or ${crd.neededBy.disable}`;
  }
  return (
    `CRD ${crd.name} is not installed (needed by --controllers=${crd.controllers.join(',')}); ` +
    `install crds/ or leave ${quotedList(crd.controllers)} out of --controllers`
  );
}

/** Logged (and shown by /readyz) when a CRD goes away while the operator runs. */
export function deletedCrdMessage(crd: RequiredCrd): string {
  if (crd.neededBy && crd.controllers.length === 0) {
    return `CRD ${crd.name} was deleted while running (needed by ${crd.neededBy.what}); it waits until the CRD is installed again, the rest keeps working`;
  }
  return (
    `CRD ${crd.name} was deleted while running (needed by --controllers=${crd.controllers.join(',')}); ` +
    `those controllers wait until it is installed again, the others keep working`
  );
}

/**
 * The API server's discovery answer for one group/version: the resource
 * names it serves, or 'absent' when the group/version is not served at all.
 */
export type DiscoveryAnswer = readonly string[] | 'absent';

/** The required CRDs discovery does not show. `answers` is keyed by `group/version`. */
export function missingCrds(
  required: readonly RequiredCrd[],
  answers: ReadonlyMap<string, DiscoveryAnswer>,
): RequiredCrd[] {
  return required.filter((crd) => {
    const answer = answers.get(groupVersion(crd.resource));
    return answer === undefined || answer === 'absent' || !answer.includes(crd.resource.plural);
  });
}

export const groupVersion = (r: ApiResource): string => `${r.group}/${r.version}`;
