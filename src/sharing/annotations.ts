// Annotation keys and Secret types shared with upstream secretgen-controller;
// YAML written for upstream relies on these exact strings.

/** On a Secret: marks it as a placeholder to fill with merged image pull credentials (any value). */
export const IMAGE_PULL_SECRET_ANNOTATION = 'secretgen.carvel.dev/image-pull-secret';
/** On a placeholder Secret: JSON status written by the operator. */
export const STATUS_ANNOTATION = 'secretgen.carvel.dev/status';
/** On a SecretExport: float precedence, default 0. */
export const WEIGHT_ANNOTATION = 'secretgen.carvel.dev/weight';
/** On a Namespace: blocks `"*"` matches only (any value, even empty). */
export const EXCLUDED_FROM_WILDCARD_ANNOTATION = 'secretgen.carvel.dev/excluded-from-wildcard-matching';

export const DOCKER_CONFIG_JSON_TYPE = 'kubernetes.io/dockerconfigjson';
export const DOCKER_CONFIG_JSON_KEY = '.dockerconfigjson';
