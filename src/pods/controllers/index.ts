import type { OperatorConfig } from '../../config.js';
import type { ControllerOperator, OperatorContext } from '../../runtime/operator.js';
import { ImagePullSecretPolicyController } from './image-pull-secret-policy.js';

/** Controllers that bring credentials to Pods, selected by --controllers. */
export function podControllers(ctx: OperatorContext, config: OperatorConfig): ControllerOperator[] {
  const wanted = new Set(config.controllers);
  const controllers: ControllerOperator[] = [];
  if (wanted.has('imagepullsecretpolicy'))
    controllers.push(new ImagePullSecretPolicyController(ctx, config.namespace));
  return controllers;
}
