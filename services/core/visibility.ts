/**
 * Who may see whose presence. `all` (everyone sees everyone) is the default; `none` hides
 * everyone from users (services and admins always see); a roster policy asks a function or
 * an HTTP callback (the security issue adds those).
 */
export interface VisibilityPolicy {
  /** May `viewer` (a user) see `target`'s presence? A user always sees herself. */
  canSee(viewer: string, target: string): boolean | Promise<boolean>
}

export const everyoneVisible: VisibilityPolicy = { canSee: () => true }

export const nobodyVisible: VisibilityPolicy = { canSee: (viewer, target) => viewer === target }
