import { ISignal } from '@lumino/signaling';
import { useEffect, useReducer } from 'react';

/** Re-render whenever `model.changed` fires. */
export function useModel<M extends { changed: ISignal<M, void> }>(model: M): M {
  const [, rerender] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    const slot = () => rerender();
    model.changed.connect(slot);
    return () => {
      model.changed.disconnect(slot);
    };
  }, [model]);
  return model;
}
