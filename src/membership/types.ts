/** Lifecycle of a DynamoNode (`node.status`). */
export type NodeStatus = 'starting' | 'running' | 'stopping' | 'stopped';

/** A member as this node sees it (`node.members()`). `down` is local failure detection, not gossip. */
export interface MemberView {
  /** The member's stable id (`DynamoNodeOptions.id`). */
  id: string;
  /** Where peers reach it (its transport's address). */
  address: string;
  /** `down` is this node's failure detector's opinion; `joining` and `leaving` come from the ring. */
  status: 'joining' | 'up' | 'down' | 'leaving';
  /** Relative capacity: its share of partitions (`DynamoNodeOptions.weight`). */
  weight: number;
  /** Partitions this member owns in the current ring. */
  partitions: number;
  /** The member's failure domain (its `zone` option); absent for a member without one. */
  zone?: string;
}

/**
 * Gossiped record of one member. `version` grows with every change to the record, so the merge
 * of two member tables keeps the newer record of each member.
 */
export interface MemberRecord {
  id: string;
  address: string;
  weight: number;
  state: 'joining' | 'valid' | 'leaving' | 'removed';
  version: number;
  /** Failure domain; absent: the default zone (a cluster without zones is one zone). */
  zone?: string;
}

/** Owners of each partition, with a version: the higher version wins when two rings meet. */
export interface RingState {
  version: number;
  owners: string[];
  /** The member that computed this ring (tie-break when versions are equal). */
  claimant: string;
  /**
   * A rebalance in progress: the owners the ring moves to once every transfer of the plan is
   * done (`done`: task ids, a grow-only set merged by union). Requests keep using `owners`, and
   * writes also reach the gaining nodes, until the claimant makes `pending.owners` current.
   */
  pending: { owners: string[]; done: string[] } | null;
}

export interface ClusterState {
  /** Sorted by id. */
  members: MemberRecord[];
  ring: RingState;
}
